// Slow request bodies: a client that stops sending mid-body gets 408 (flag SI) after
// stream_idle_timeout, and, on HTTP/1, its connection is closed (the rest of the body would
// otherwise be read as the next request, or hold the connection forever). On HTTP/2 only the
// stream ends; the session carries on. A keep-alive client whose request completed is not closed.
// A burst of stalled bodies and slowloris headers leaves fds and heap at their baseline.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { assertBackToBaseline, leakBaseline } from '../helpers/leak-baseline.ts';

async function setup(t: { after(fn: () => unknown): void }, filters: boolean, hcm: Record<string, unknown> = {}) {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  // With retries the proxy buffers small bodies before routing; without, it streams them.
  const route = filters ? { cluster: 'up', retry_policy: { retry_on: '5xx', num_retries: 1 } } : { cluster: 'up' };
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route }]), { stream_idle_timeout: '0.3s', ...hcm })] });
  return { h, up, port: h.port('l') };
}

/** Writes `bytes` on a raw connection; resolves with what came back once the proxy closes it, or after `waitMs`. */
function exchange(port: number, bytes: string, waitMs: number): Promise<{ raw: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let raw = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ raw, closed: false });
    }, waitMs);
    s.on('data', (c) => (raw += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ raw, closed: true });
    });
  });
}

const flags = (h: Harness): string => formatResponseFlags(h.streams.at(-1)!.responseFlags);

for (const buffered of [false, true]) {
  test(`HTTP/1: a body that stalls gets 408 SI and a close (${buffered ? 'buffered for retries' : 'streamed'})`, async (t) => {
    const { h, up, port } = await setup(t, buffered);
    // 10 of 100 announced bytes, then nothing: the proxy must answer and close well before 5 s.
    const r = await exchange(port, 'POST /upload HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n0123456789', 5000);
    assert.match(r.raw, /^HTTP\/1\.1 408 /);
    assert.match(r.raw, /\r\nconnection: close\r\n/i);
    assert.ok(r.closed, 'the connection is closed after the 408');
    assert.equal(flags(h), 'SI');
    assert.equal(up.requests.length, 0, 'the upstream never saw a complete request');

    // A complete request on a keep-alive connection stays open: a second request follows on it.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const cxTotal = (): number => h.rt.stats.all().find((x) => x.name === 'http.l.downstream_cx_total')!.value;
    const connections = cxTotal();
    const first = await request(port, { path: '/upload', method: 'POST', body: 'hi', agent });
    assert.equal(first.status, 200);
    assert.equal(first.headers.connection, 'keep-alive');
    assert.equal((await request(port, { path: '/again', agent })).status, 200);
    assert.equal(cxTotal() - connections, 1, 'both requests went over one downstream connection');
  });
}

test('HTTP/2: a stalled body gets 408 SI on its stream; the session goes on', async (t) => {
  const { h, port } = await setup(t, false);
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  const status = await new Promise<number>((resolve) => {
    const s = c.request({ ':path': '/upload', ':method': 'POST', 'content-length': '100' });
    s.on('error', () => undefined);
    s.on('response', (hd) => resolve(Number(hd[':status'])));
    s.write('0123456789');
  });
  assert.equal(status, 408);
  assert.equal(flags(h), 'SI');
  const again = await new Promise<number>((resolve) => {
    const s = c.request({ ':path': '/' });
    s.on('response', (hd) => resolve(Number(hd[':status'])));
    s.resume();
    s.end();
  });
  assert.equal(again, 200);
  assert.equal(c.destroyed, false);
});

/** Sends `chunks` one every `everyMs` (stopping when the proxy closes); resolves with the reply once closed. */
function trickle(port: number, chunks: string[], everyMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let raw = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < chunks.length && !s.destroyed) s.write(chunks[i++]);
    }, everyMs);
    s.on('data', (c) => (raw += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearInterval(timer);
      resolve(raw);
    });
  });
}

test('a burst of stalled bodies and slowloris headers: every one gets 408 and a close; fds and heap back at baseline', async (t) => {
  const { h, up, port } = await setup(t, false, { request_headers_timeout: '0.5s' });
  assert.equal((await exchange(port, 'GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n', 2000)).closed, true, 'warm-up');
  const base = await leakBaseline();
  const slowHeaders = ['GET / HTTP/1.1\r\n', 'host: a\r\n', ...Array.from({ length: 100 }, (_, i) => `x-slow-${i}: y\r\n`)];
  const outcomes = await Promise.all([
    ...Array.from({ length: 20 }, () => exchange(port, 'POST /upload HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n0123456789', 10_000).then((o) => (o.closed ? o.raw : 'left open'))),
    ...Array.from({ length: 20 }, () => trickle(port, slowHeaders, 100)),
  ]);
  const wrong = outcomes.filter((raw) => !/^HTTP\/1\.1 408 /.test(raw));
  assert.deepEqual(wrong, [], 'every slow client got 408 and was closed');
  assert.equal(up.requests.length, 1, 'only the warm-up reached the upstream');
  for (let i = 0; i < 100 && h.rt.stats.all().find((s) => s.name === 'http.l.downstream_rq_active')!.value !== 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.rt.stats.all().find((s) => s.name === 'http.l.downstream_rq_active')!.value, 0, 'no stream left active');
  await assertBackToBaseline(base, { maxHeapGrowth: 8 * 1024 * 1024 });
});
