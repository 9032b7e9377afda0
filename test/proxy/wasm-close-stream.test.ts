// envoy.filters.http.wasm proxy_close_stream over real sockets: as Envoy, the stream is reset (not
// answered): from request headers the upstream is never called, from response headers the client
// gets no response; an HTTP/1.1 client sees its connection closed, an HTTP/2 one an RST_STREAM while
// its session goes on.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { test } from 'node:test';
import { tempDir } from '../helpers/temp-dir.ts';
import { closeStreamPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { configure, httpListener, request, ROUTER, routeConfig, startTestRuntime, startUpstream } from './harness.ts';
import { staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';

function h2Get(session: http2.ClientHttp2Session, headers: Record<string, string>): Promise<{ status: number } | { rstCode: number }> {
  return new Promise((resolve) => {
    const s = session.request({ ':path': '/', ...headers });
    let status = 0;
    s.on('response', (h) => (status = Number(h[':status'])));
    s.on('error', () => undefined);
    s.resume();
    s.on('close', () => resolve(s.rstCode === http2.constants.NGHTTP2_NO_ERROR && status ? { status } : { rstCode: s.rstCode }));
  });
}

test('wasm: proxy_close_stream resets the stream from request or response headers (HTTP/1.1 and HTTP/2)', async (t) => {
  const app = await startUpstream('app', (req, res) => {
    res.writeHead(200, req.headers['x-want-close'] ? { 'x-close-response': '1' } : {});
    res.end('from app');
    return true;
  });
  const h = await startTestRuntime(t, [app]);
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'close', closeStreamPlugin);
  const filter = { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: { name: 'c', root_id: 'c', vm_config: { vm_id: 'c', code: { local: { filename: file } } } } } };
  await configure(h, {
    clusters: [staticCluster('app', [app.port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [filter, ROUTER] })],
  });
  const port = h.port('l');

  assert.equal((await request(port)).status, 200);
  await assert.rejects(request(port, { headers: { 'x-close-request': '1' } }), /socket hang up|ECONNRESET/, 'HTTP/1.1: the connection is closed, no response');
  assert.equal(app.requests.length, 1, 'a stream reset on request headers never reaches the upstream');
  await assert.rejects(request(port, { headers: { 'x-want-close': '1' } }), /socket hang up|ECONNRESET/, 'reset on response headers: no response');
  assert.equal(app.requests.length, 2);

  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.close());
  assert.deepEqual(await h2Get(session, {}), { status: 200 });
  const reset = await h2Get(session, { 'x-close-request': '1' });
  assert.ok('rstCode' in reset && reset.rstCode !== http2.constants.NGHTTP2_NO_ERROR, `HTTP/2: RST_STREAM (${JSON.stringify(reset)})`);
  const resetLate = await h2Get(session, { 'x-want-close': '1' });
  assert.ok('rstCode' in resetLate && resetLate.rstCode !== http2.constants.NGHTTP2_NO_ERROR, `HTTP/2: RST_STREAM on response headers (${JSON.stringify(resetLate)})`);
  assert.deepEqual(await h2Get(session, {}), { status: 200 }, 'the session goes on');
  assert.equal(app.requests.length, 5);
});
