// envoy.filters.http.wasm waiting on the response side, over real sockets: a plugin pauses on
// response headers around an HTTP call and continues the response from the call's callback
// (proxy_continue_stream(Response)), the head changed there and the body held meanwhile; a local
// response from proxy_on_response_headers, and one from the call's callback while the head is held,
// replace the upstream's response (Envoy's sendDirectLocalReply), over HTTP/1.1 and HTTP/2. A
// streamed response continued mid-body sends its head and what came so far at once, the rest as it comes.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { test } from 'node:test';
import { tempDir } from '../helpers/temp-dir.ts';
import { responseWaitPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { waitFor } from '../helpers/wait.ts';
import { configure, httpListener, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';

function h2Get(port: number, path: string): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const s = session.request({ ':path': path });
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    s.on('response', (h) => (headers = h));
    s.on('data', (c: Buffer) => (body += c));
    s.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, body });
    });
    s.on('error', reject);
  });
}

test('wasm: a response paused on its headers around an HTTP call, continued from the callback; local responses from the response side replace the upstream one', async (t) => {
  const releaseAuthz: (() => void)[] = [];
  let appFinished = 0;
  let endStreamed: (() => void) | undefined;
  const app = await startUpstream('app', (req, res) => {
    if (req.url === '/streamed') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first, ');
      endStreamed = () => res.end('last');
      return true;
    }
    const extra: Record<string, string> = req.url === '/deny-now' ? { 'x-deny-now': '1' } : req.url === '/deny-later' ? { 'x-deny-later': '1' } : {};
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'app', ...extra });
    res.write('part one, ');
    res.end('part two');
    res.on('finish', () => appFinished++);
    return true;
  });
  // Answers once the test lets it: the plugin's response waits on it.
  const authz = await startUpstream('authz', (_req, res) => {
    releaseAuthz.push(() => {
      res.writeHead(202);
      res.end();
    });
    return true;
  });
  const h = await startTestRuntime(t, [app, authz]);
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'response-wait', responseWaitPlugin);
  const filter = { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: { name: 'rw', root_id: 'rw', vm_config: { vm_id: 'rw', code: { local: { filename: file } } } } } };
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authz.port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [filter, ROUTER] })],
  });
  const port = h.port('l');

  // The upstream's whole response reached the proxy before the call is answered: it waits for it.
  const waiting = request(port, { path: '/wait' });
  await waitFor('the plugin to call authz', async () => (releaseAuthz.length === 1 && appFinished === 1 ? true : undefined));
  await new Promise((r) => setTimeout(r, 100));
  releaseAuthz.shift()!();
  const r = await waiting;
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-authz-status'], '202', 'the head held until the callback changed it');
  assert.equal(r.headers['x-upstream'], 'app');
  assert.equal(r.body, 'part one, part two', 'the body held while the call was out, then sent whole');

  const now = await request(port, { path: '/deny-now' });
  assert.equal(now.status, 403);
  assert.equal(now.body, 'denied on response headers');
  assert.equal(now.headers['x-wasm-replaced'], 'yes');
  assert.equal(now.headers['x-upstream'], undefined, 'the upstream response is replaced, not merged');

  const later = request(port, { path: '/deny-later' });
  await waitFor('the plugin to call authz', async () => (releaseAuthz.length === 1 ? true : undefined));
  releaseAuthz.shift()!();
  const l = await later;
  assert.equal(l.status, 401);
  assert.equal(l.body, 'denied after the call');
  assert.equal(l.headers['x-wasm-replaced'], 'yes');
  assert.equal(l.headers['x-upstream'], undefined);

  // HTTP/2 downstream: the same waiting and replacing.
  const h2wait = h2Get(port, '/wait');
  await waitFor('the plugin to call authz', async () => (releaseAuthz.length === 1 ? true : undefined));
  releaseAuthz.shift()!();
  const r2 = await h2wait;
  assert.equal(r2.status, 200);
  assert.equal(r2.headers['x-authz-status'], '202');
  assert.equal(r2.body, 'part one, part two');
  const now2 = await h2Get(port, '/deny-now');
  assert.equal(now2.status, 403);
  assert.equal(now2.body, 'denied on response headers');

  // Continued while the upstream still streams: the head goes out then, not at the body's end (the
  // upstream ends only once the client has the head and the first chunk).
  const streamed = await new Promise<{ status: number; authz: unknown; body: string }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/streamed' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c;
        if (body === 'first, ') endStreamed!();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, authz: res.headers['x-authz-status'], body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void waitFor('the plugin to call authz', async () => (releaseAuthz.length === 1 ? true : undefined)).then(() => releaseAuthz.shift()!());
  });
  assert.deepEqual(streamed, { status: 200, authz: '202', body: 'first, last' });

  // The replaced responses' upstream attempts were accounted for: nothing left active.
  assert.equal(h.rt.stats.all().find((s) => s.name === 'cluster.app.upstream_rq_active')?.value, 0);
});
