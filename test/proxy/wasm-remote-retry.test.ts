// Wasm vm_config.code.remote retry_policy, as Envoy's remote data source applies it: a module
// server on 127.0.0.1:0 fails its first answers (503, 404) and can hold one. The fetch is tried again after each failure (retry_back_off), the listener warming
// (not in service) through the retries, and serves with the plugin once the module came; without a
// retry_policy the fetch is retried once (Envoy's default); with too few retries the fetch gives up
// and fail_open decides (the streams go on without the plugin, or get 503). The policy's fields
// Envoy does not read there, and a policy on a module fetched without a cluster, are warned about.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import { listenLocal } from '../helpers/listen.ts';
import { waitFor } from '../helpers/wait.ts';
import { addHeaderPlugin, buildPlugin } from '../helpers/wasm-plugins.ts';
import { CLUSTER_TYPE, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';
const FAST = { base_interval: '0.01s', max_interval: '0.05s' };

/** Serves `module` at every path; the first `failFirst` requests of a path fail (503, then 404, in turn: Envoy retries any answer but a 200); the answer to request number `holdTry` waits for `release()`. */
function flakyModuleServer(module: Buffer, failFirst: number, holdTry = 0) {
  const asked = new Map<string, number>();
  let release = () => undefined as void;
  const held = new Promise<void>((r) => (release = r));
  const server = http.createServer((req, res) => {
    const n = (asked.get(req.url ?? '') ?? 0) + 1;
    asked.set(req.url ?? '', n);
    void (n === holdTry ? held : Promise.resolve()).then(() => {
      if (n > failFirst) res.writeHead(200, { 'content-type': 'application/wasm' }).end(module);
      else if (n % 2) res.writeHead(503).end('busy');
      else res.writeHead(404).end('not yet');
    });
  });
  return { server, asked: (path: string) => asked.get(path) ?? 0, release: () => release() };
}

/** A module that behaves as `module` with another sha256 (a custom section appended): fetched, not found in the code cache. */
function variant(module: Buffer, tag: string): Buffer {
  const name = Buffer.from(tag);
  return Buffer.concat([module, Buffer.from([0, name.length + 1, name.length]), name]);
}

function remotePlugin(name: string, module: Buffer, o: { retryPolicy?: object; failOpen?: boolean; cluster?: string } = {}) {
  const sha256 = crypto.createHash('sha256').update(module).digest('hex');
  const remote = { http_uri: { uri: `http://code.local/${name}.wasm`, cluster: o.cluster ?? 'code', timeout: '5s' }, sha256, ...(o.retryPolicy ? { retry_policy: o.retryPolicy } : {}) };
  return {
    name: 'envoy.filters.http.wasm',
    typed_config: { '@type': WASM, config: { name, fail_open: o.failOpen ?? false, configuration: { '@type': STRING_VALUE, value: name }, vm_config: { vm_id: name, code: { remote } } } },
  };
}

async function runtime(t: Parameters<typeof startTestRuntime>[0], code: ReturnType<typeof flakyModuleServer>) {
  const codePort = await listenLocal(code.server, t);
  t.after(() => code.server.closeAllConnections());
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [app.port]), staticCluster('code', [codePort])]), []);
  const listener = (name: string, plugin: object) => httpListener(name, routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [plugin, ROUTER] });
  return { h, app, listener };
}

test('wasm remote retry_policy: failed fetches are tried again with backoff while the listener warms; it serves with the plugin once the module came', async (t) => {
  const module = variant(await buildPlugin(addHeaderPlugin), 'retried');
  // The third try (after a 503 and a 404) is held: the listener still warms.
  const code = flakyModuleServer(module, 2, 3);
  const { h, listener } = await runtime(t, code);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('in', remotePlugin('retried', module, { retryPolicy: { num_retries: 3, retry_back_off: FAST } }))]), []);
  await waitFor('the third try', () => (code.asked('/retried.wasm') === 3 ? true : undefined));
  assert.equal(h.rt.listeners.get('in'), undefined, 'not in service while the fetch is retried');
  assert.deepEqual(h.rt.listeners.warmingListeners().map((c) => c.name), ['in']);
  code.release();
  await h.rt.settled();
  const r = await request(h.port('in'));
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers['x-wasm-config'], 'retried', 'the first answer has the plugin');
  assert.equal(code.asked('/retried.wasm'), 3);
});

test('wasm remote code without a retry_policy is fetched again once after a failure (Envoy\'s default num_retries 1)', async (t) => {
  const module = variant(await buildPlugin(addHeaderPlugin), 'default');
  const code = flakyModuleServer(module, 1);
  const { h, listener } = await runtime(t, code);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('in', remotePlugin('default', module))]), []);
  await h.rt.settled();
  const r = await request(h.port('in'));
  assert.equal(r.headers['x-wasm-config'], 'default', r.body);
  assert.equal(code.asked('/default.wasm'), 2);
});

test('wasm remote retry_policy: with too few retries the fetch gives up; fail_open lets the streams go on without the plugin, else they get 503', async (t) => {
  const module = variant(await buildPlugin(addHeaderPlugin), 'gives-up');
  const code = flakyModuleServer(module, 3);
  const { h, app, listener } = await runtime(t, code);
  const policy = { num_retries: 1, retry_back_off: FAST };
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('open', remotePlugin('open', module, { retryPolicy: policy, failOpen: true })), listener('closed', remotePlugin('closed', module, { retryPolicy: policy }))]), []);
  await h.rt.settled();
  assert.equal(code.asked('/open.wasm'), 2, 'one try and one retry');
  assert.equal(code.asked('/closed.wasm'), 2);
  const open = await request(h.port('open'));
  assert.equal(open.status, 200, open.body);
  assert.equal(open.headers['x-wasm-config'], undefined, 'without the plugin');
  assert.equal((await request(h.port('closed'))).status, 503);
  assert.equal(app.requests.length, 1, 'only the fail_open stream reached the app');
});

test('wasm remote retry_policy: the fields Envoy does not read there, and a policy on a module fetched without a cluster, warn by path', async (t) => {
  const module = variant(await buildPlugin(addHeaderPlugin), 'warned');
  const code = flakyModuleServer(module, 0);
  const { h, listener } = await runtime(t, code);
  const policy = { num_retries: 0, retry_on: '5xx', retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }] };
  const agent = remotePlugin('agent', module, { retryPolicy: { num_retries: 2 }, cluster: '_' });
  // A link-local address: refused at once, not tried again (Istio's agent's SSRF guard), no request made.
  (agent.typed_config.config.vm_config.code.remote.http_uri as { uri: string }).uri = 'http://169.254.169.254/agent.wasm';
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('warned', remotePlugin('warned', module, { retryPolicy: policy })), listener('agent', { ...agent, typed_config: { ...agent.typed_config, config: { ...agent.typed_config.config, fail_open: true } } })]), []);
  const text = [...h.rt.warnings.values()].flat().join('\n');
  assert.match(text, /code\.remote\.retry_policy\.retry_on: not supported for Wasm module fetches/);
  assert.match(text, /code\.remote\.retry_policy\.retry_host_predicate: not supported for Wasm module fetches/);
  assert.match(text, /code\.remote\.retry_policy: has no effect on a module fetched without a cluster/);
  assert.doesNotMatch(text, /num_retries/);
  const max = h.apply(LISTENER_TYPE, [listener('bad', remotePlugin('bad', module, { retryPolicy: { retry_back_off: { base_interval: '2s', max_interval: '1s' } } }))]);
  assert.match(max.join('\n'), /retry_policy\.retry_back_off\.max_interval: max_interval \(1000 ms\) must be at least base_interval \(2000 ms\)/);
  await h.rt.settled();
});
