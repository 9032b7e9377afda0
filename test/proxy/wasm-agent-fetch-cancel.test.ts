// A Wasm module fetched as Istio's agent does (code.remote without a cluster: wasm-fetch.ts) whose
// listener version is dropped while it warms: the download is aborted (the module server sees its
// unanswered request's connection close) unless another version still waits for the same module, in
// which case the one shared fetch goes on and serves that version. (listener-warming-cancel covers
// modules fetched through a cluster.)
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, test } from 'node:test';
import { listenLocal } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { buildPlugin } from '../helpers/wasm-plugins.ts';
import { CLUSTER_TYPE, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';

// The proxy's module cache (one per process) in a directory of this file's own; one request may
// take longer than the tests (Istio's agent's 15 s would end a held request on its own).
process.env.RIG_WASM_CACHE_DIR = tempDir({ after }, 'rig-wasm-cache-');
process.env.WASM_HTTP_REQUEST_TIMEOUT = '600s';

const module = await buildPlugin({
  strings: { name: 'x-plugin', value: 'yes' },
  imports: ['proxy_add_header_map_value'],
  body: `
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_add_header_map_value (i32.const 2) (i32.const $name$) (i32.const #name#) (i32.const $value$) (i32.const #value#)))
    (i32.const 0))`,
});

/** Holds every request until release(), then answers the module; counts requests and held requests whose connection closed unanswered. */
function slowModuleServer() {
  let asked = 0;
  let closedUnanswered = 0;
  const held: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => {
    asked++;
    held.push(res);
    res.once('close', () => {
      if (!res.writableEnded) closedUnanswered++;
    });
  });
  const release = () => {
    for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/wasm' }).end(module);
  };
  return { server, release, asked: () => asked, closedUnanswered: () => closedUnanswered };
}

async function setup(t: Parameters<typeof startTestRuntime>[0], path: string) {
  const code = slowModuleServer();
  t.after(() => code.server.closeAllConnections());
  const codePort = await listenLocal(code.server, t);
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [app.port])]), []);
  // istiod's form: no cluster ("_"), no sha256; the same plugin (name, url) in every listener.
  const remote = { http_uri: { uri: `http://127.0.0.1:${codePort}${path}`, cluster: '_', timeout: '60s' } };
  const plugin = { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: { name: 'slow', root_id: 'slow', vm_config: { vm_id: 'slow', runtime: 'envoy.wasm.runtime.v8', code: { remote } } } } };
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  const listener = (name: string, withPlugin = true) => httpListener(name, route, { http_filters: withPlugin ? [plugin, ROUTER] : [ROUTER] });
  return { h, code, listener };
}

test('an agent-fetched module whose only waiting listener version is removed: the download is aborted', async (t) => {
  const { h, code, listener } = await setup(t, '/gone.wasm');
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('gone'), listener('control', false)]), []);
  await waitFor('the module requested', () => (code.asked() === 1 ? true : undefined));
  assert.deepEqual(h.rt.listeners.warmingListeners().map((c) => c.name), ['gone']);

  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('control', false)]), []);
  await waitFor('the download aborted (its connection closed)', () => (code.closedUnanswered() === 1 ? true : undefined));
  assert.equal(code.asked(), 1, 'no other try');
  assert.equal(h.rt.listeners.get('gone'), undefined, 'never in service');
  assert.deepEqual(h.rt.listeners.warmingListeners(), []);
});

test('an agent-fetched module shared by two listener versions, one removed: the fetch goes on and the other serves with the plugin', async (t) => {
  const { h, code, listener } = await setup(t, '/shared.wasm');
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('a'), listener('b')]), []);
  await waitFor('the module requested', () => (code.asked() === 1 ? true : undefined));
  assert.deepEqual(h.rt.listeners.warmingListeners().map((c) => c.name).sort(), ['a', 'b']);

  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('b')]), []);
  code.release();
  const port = await waitFor('b in service', () => h.port('b') || undefined);
  const r = await request(port);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers['x-plugin'], 'yes', 'the module of the shared fetch');
  assert.deepEqual([code.asked(), code.closedUnanswered()], [1, 0], 'one fetch, not aborted');
});
