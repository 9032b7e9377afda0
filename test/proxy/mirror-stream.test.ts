// Request mirroring with streamed bodies: the shadow gets the whole body (chunked HTTP/1.1 and
// HTTP/2) while the primary streams it unbuffered; a shadow that stops reading loses its copy
// (reset) instead of holding the primary back.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

function mirrorRoute(cluster: string, shadow: string) {
  return routeConfig('r', [{ match: { prefix: '/' }, route: { cluster, timeout: '30s', request_mirror_policies: [{ cluster: shadow }] } }]);
}

test('streamed request bodies reach the mirror whole: chunked HTTP/1.1 and HTTP/2', async (t) => {
  const primary = await startUpstream('primary');
  const shadow = await startUpstream('shadow');
  const h = await startTestRuntime(t, [primary, shadow]);
  await configure(h, { clusters: [staticCluster('primary', [primary.port]), staticCluster('shadow', [shadow.port])], listeners: [httpListener('l', mirrorRoute('primary', 'shadow'))] });
  const port = h.port('l');

  // Chunked upload, written piece by piece: the primary answers with the whole body it streamed.
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    void (async () => {
      for (let i = 0; i < 5; i++) {
        req.write(`part${i};`);
        await sleep(10);
      }
      req.end();
    })();
  });
  assert.equal(JSON.parse(body).body, 'part0;part1;part2;part3;part4;');

  // HTTP/2 request body (never buffered by the proxy).
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.close());
  const big = 'x'.repeat(200_000);
  const h2body = await new Promise<string>((resolve, reject) => {
    const s = session.request({ ':method': 'PUT', ':path': '/h2' });
    let b = '';
    s.on('data', (c: Buffer) => (b += c));
    s.on('end', () => resolve(b));
    s.on('error', reject);
    s.end(big);
  });
  assert.equal(JSON.parse(h2body).body.length, big.length);

  for (let i = 0; i < 200 && shadow.requests.length < 2; i++) await sleep(10);
  assert.deepEqual(
    shadow.requests.map((r) => [r.method, r.url, r.body.length]),
    [
      ['POST', '/upload', 30],
      ['PUT', '/h2', big.length],
    ],
  );
  assert.equal(shadow.requests[0].body, 'part0;part1;part2;part3;part4;');
});

test('a mirror that stops reading loses its copy; the primary gets the whole large body', async (t) => {
  const primary = await startUpstream('primary');
  // Accepts connections and never reads: its socket buffers fill, then the proxy's copy backs up.
  const stuck = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    stuck.add(s);
    s.pause();
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    for (const s of stuck) s.destroy();
    silent.close();
    await primary.close();
  });
  await configure(h, {
    clusters: [staticCluster('primary', [primary.port]), staticCluster('silent', [(silent.address() as AddressInfo).port])],
    listeners: [httpListener('l', mirrorRoute('primary', 'silent'))],
  });
  const size = 16 * 1024 * 1024;
  const res = await new Promise<{ status: number; length: number }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: h.port('l'), method: 'POST', path: '/big', headers: { 'content-length': size }, agent: false }, (r) => {
      let b = '';
      r.on('data', (c: Buffer) => (b += c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, length: JSON.parse(b).body.length }));
    });
    req.on('error', reject);
    req.end(Buffer.alloc(size, 'y'));
  });
  assert.deepEqual(res, { status: 200, length: size });
  // The dropped copy reset the shadow request.
  let resets = 0;
  for (let i = 0; i < 200 && resets === 0; i++) {
    resets = h.rt.stats.all().find((s) => s.name === 'cluster.silent.upstream_rq_rx_reset')?.value ?? 0;
    if (!resets) await sleep(10);
  }
  assert.equal(resets, 1);
});
