// envoy.filters.http.wasm and the buffer limit, over real sockets: a body the plugin keeps paused
// grows past the route's per_request_buffer_limit_bytes; as Envoy, the request is answered 413, and
// a response whose head the plugin holds is answered 500 in its place. Smaller bodies go through.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDir } from '../helpers/temp-dir.ts';
import { bodyPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { configure, httpListener, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';

test('wasm: a paused body past the buffer limit: 413 for a request, 500 for a held response', async (t) => {
  const app = await startUpstream('app', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(req.url === '/big' ? 'y'.repeat(5000) : 'small');
    return true;
  });
  const h = await startTestRuntime(t, [app]);
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'body', bodyPlugin);
  const filter = { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: { name: 'b', root_id: 'b', vm_config: { vm_id: 'b-limit', code: { local: { filename: file } } } } } };
  await configure(h, {
    clusters: [staticCluster('app', [app.port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' }, per_request_buffer_limit_bytes: 1000 }]), { http_filters: [filter, ROUTER] })],
  });
  const port = h.port('l');
  const ok = await request(port, { method: 'POST', path: '/small', body: 'x'.repeat(500), headers: { 'content-type': 'text/plain' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'replaced by wasm');
  const big = await request(port, { method: 'POST', path: '/small', body: 'x'.repeat(5000), headers: { 'content-type': 'text/plain' } }).catch((e: Error) => e);
  assert.ok(!(big instanceof Error), String(big));
  assert.equal(big.status, 413);
  const bigResponse = await request(port, { path: '/big' });
  assert.equal(bigResponse.status, 500);
});
