// envoy.filters.http.wasm in `rig proxy -c`: Proxy-Wasm plugins built from WebAssembly text at test
// time run on real requests: a header from the plugin configuration and from a property, a 401
// local response (Istio's basic auth example), a pause on request headers around an HTTP call to
// another cluster, a counter in /stats, a trap with fail_open (the request goes on) and without it
// (503), a host function rig proxy lacks answering Unimplemented with a warning naming it; bodies
// buffered and rewritten; properties, filter state, shared data with CAS, ticks and proxy_on_log;
// and configs rig proxy refuses with a message that says why.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { addHeaderPlugin, bodyPlugin, buildPlugin, callOrTrapPlugin, denyPlugin, hostPlugin, httpCallPlugin, metricPlugin, queuePlugin, responseTrapPlugin, rootDeletePlugin, trapPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { waitFor } from '../helpers/wait.ts';
import { CLUSTER_TYPE, HCM, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';

function cluster(name: string, port: number) {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } };
}

function wasmFilter(file: string, opts: { name: string; configuration?: string; failOpen?: boolean; inline?: boolean }) {
  const code = opts.inline ? { local: { inline_bytes: fs.readFileSync(file).toString('base64') } } : { local: { filename: file } };
  return {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': WASM,
      config: {
        name: opts.name,
        root_id: opts.name + '_root',
        vm_config: { vm_id: opts.name, runtime: 'envoy.wasm.runtime.v8', code },
        ...(opts.configuration !== undefined ? { configuration: { '@type': STRING_VALUE, value: opts.configuration } } : {}),
        ...(opts.failOpen ? { fail_open: true } : {}),
      },
    },
  };
}

function listener(name: string, filter: object) {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              http_filters: [filter, ROUTER],
              route_config: { name, virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
            },
          },
        ],
      },
    ],
  };
}

test('wasm: plugins from the config add headers, deny, pause around an http call, count, and trap with fail_open or fail closed', async (t) => {
  const app = await startUpstream('app');
  const authz = await startUpstream('authz', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('allowed-by-authz');
    return true;
  });
  t.after(async () => {
    await app.close();
    await authz.close();
  });
  const dir = tempDir(t, 'wasm-');
  const f = {
    header: await writePlugin(dir, 'header', addHeaderPlugin),
    deny: await writePlugin(dir, 'deny', denyPlugin),
    call: await writePlugin(dir, 'call', httpCallPlugin),
    metric: await writePlugin(dir, 'metric', metricPlugin),
    trap: await writePlugin(dir, 'trap', trapPlugin),
    responseTrap: await writePlugin(dir, 'response-trap', responseTrapPlugin),
  };
  const bootstrap = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        listener('header', wasmFilter(f.header, { name: 'header', configuration: '{"greeting":"hello"}' })),
        listener('deny', wasmFilter(f.deny, { name: 'deny', inline: true })),
        listener('call', wasmFilter(f.call, { name: 'call' })),
        listener('metric', wasmFilter(f.metric, { name: 'metric' })),
        listener('trap_open', wasmFilter(f.trap, { name: 'trap_open', failOpen: true })),
        listener('trap_closed', wasmFilter(f.trap, { name: 'trap_closed' })),
        listener('response_trap_open', wasmFilter(f.responseTrap, { name: 'response_trap_open', failOpen: true })),
        listener('response_trap_closed', wasmFilter(f.responseTrap, { name: 'response_trap_closed' })),
      ],
      clusters: [cluster('app', app.port), cluster('authz', authz.port)],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners;

  const h = await request(port.header!, { path: '/p?q=1' });
  assert.equal(h.status, 200);
  assert.equal(h.json().headers['x-wasm-path'], '/p?q=1');
  assert.equal(h.json().headers['x-wasm-unimplemented'], 'yes');
  assert.equal(h.headers['x-wasm-config'], '{"greeting":"hello"}');
  await waitFor('the warning about the unimplemented host function', async () => (/host function env\.proxy_get_configuration is not implemented in rig proxy/.test(proxy.log()) ? true : undefined));
  await request(port.header!);
  assert.equal(proxy.log().match(/proxy_get_configuration is not implemented/g)?.length, 1, 'warned once');

  const before = app.requests.length;
  const denied = await request(port.deny!);
  assert.equal(denied.status, 401);
  assert.equal(denied.headers['www-authenticate'], 'Basic realm="rig"');
  assert.equal(denied.body, 'wasm: missing authorization');
  assert.equal(app.requests.length, before, 'the upstream is not called');
  assert.equal((await request(port.deny!, { headers: { authorization: 'Basic dTpw' } })).status, 200);

  const called = await request(port.call!);
  assert.equal(called.status, 200);
  assert.equal(called.json().headers['x-authz-status'], '200');
  assert.equal(called.json().headers['x-authz-body'], 'allowed-by-authz');
  assert.equal(authz.requests.at(-1)?.headers['x-from'], 'wasm');
  assert.equal(authz.requests.at(-1)?.url, '/check');

  for (let i = 0; i < 3; i++) assert.equal((await request(port.metric!)).status, 200);
  const stats = await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats`).then((r) => r.text());
  assert.match(stats, /^wasmcustom\.wasm_test_requests_total: 3$/m);
  const prometheus = await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats/prometheus`).then((r) => r.text());
  assert.match(prometheus, /^wasm_test_requests_total 3$/m, 'Prometheus: the custom namespace stripped, no envoy_ prefix, as Envoy');

  assert.equal((await request(port.trap_open!)).status, 200, 'fail_open: the request goes on without the plugin');
  assert.equal((await request(port.trap_open!)).status, 200);
  assert.equal((await request(port.trap_closed!)).status, 503, 'fail closed: 503');
  assert.equal((await request(port.trap_closed!)).status, 503, 'the failed VM keeps failing closed');
  // The log is written asynchronously: wait for the line rather than race the response.
  await waitFor('the trap logged', async () => (/wasm plugin trap_closed .*proxy_on_request_headers failed: unreachable/.test(proxy.log()) ? true : undefined));
  const open = await request(port.response_trap_open!);
  assert.equal(open.status, 200, 'a trap on response headers with fail_open: the response goes on');
  assert.equal(open.json().server, 'app');
  const closed = await request(port.response_trap_closed!);
  assert.equal(closed.status, 503, 'a trap on response headers, fail closed: 503');
  assert.equal(closed.body, '');
});

test('wasm: request and response bodies buffered and rewritten; properties, filter state, shared data CAS, shared queues, log, ticks and proxy_on_log', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const dir = tempDir(t, 'wasm-');
  const body = await writePlugin(dir, 'body', bodyPlugin);
  const host = await writePlugin(dir, 'host', hostPlugin);
  const queue = await writePlugin(dir, 'queue', queuePlugin);
  const bootstrap = {
    node: { id: 'sidecar~127.0.0.1~wasm.default~default.svc.cluster.local', cluster: 'wasm', metadata: { WORKLOAD: 'wasm-test' } },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [listener('body', wasmFilter(body, { name: 'body' })), listener('host', wasmFilter(host, { name: 'host' })), listener('queue', wasmFilter(queue, { name: 'queue' }))],
      clusters: [cluster('app', app.port)],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners;

  const b = await request(port.body!, { method: 'POST', body: 'x'.repeat(100_000), headers: { 'content-type': 'text/plain' } });
  assert.equal(b.status, 200);
  assert.equal(b.body, 'replaced by wasm');
  assert.equal(b.headers['x-wasm-body-seen'], 'yes', 'a head paused on response headers takes changes made at the body end');
  assert.equal(app.requests.at(-1)?.body, 'wasm:' + 'x'.repeat(100_000));

  const h = await request(port.host!);
  const seen = h.json().headers;
  assert.match(String(seen['x-source']), /^127\.0\.0\.1:\d+$/);
  assert.equal(seen['x-node-id'], 'sidecar~127.0.0.1~wasm.default~default.svc.cluster.local');
  assert.equal(seen['x-node-workload'], 'wasm-test');
  assert.equal(seen['x-plugin'], 'host');
  assert.equal(seen['x-fs'], 'state-value');
  assert.equal(seen['x-cas'], 'mismatch');
  await waitFor('the plugin log line', async () => (/wasm log host host: hello from wasm/.test(proxy.log()) ? true : undefined));
  const stat = async (name: string) => Number((await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats`).then((r) => r.text())).match(new RegExp(`^wasmcustom\\.${name}: (\\d+)$`, 'm'))?.[1] ?? 0);
  await waitFor('proxy_on_tick to run', async () => ((await stat('wasm_test_ticks')) > 0 ? true : undefined));
  await waitFor('proxy_on_log for the request', async () => ((await stat('wasm_test_logged')) === 1 ? true : undefined));
  for (let i = 0; i < 3; i++) assert.equal((await request(port.queue!)).status, 200);
  await waitFor('proxy_on_queue_ready to dequeue the three items', async () => ((await stat('wasm_test_dequeued')) === 3 ? true : undefined));
});

test('wasm: configs rig proxy refuses say why (remote code without sha256, not a Proxy-Wasm module, a plugin refusing its configuration, a null VM, a configuration of another type)', async (t) => {
  const h = await startTestRuntime(t);
  const dir = tempDir(t, 'wasm-');
  const good = await writePlugin(dir, 'good', metricPlugin);
  const notProxyWasm = path.join(dir, 'plain.wasm');
  fs.writeFileSync(notProxyWasm, (await buildPlugin(trapPlugin)).subarray(0, 8)); // the header of an empty module
  const refusing = await writePlugin(dir, 'refusing', { imports: [], body: '(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))' });
  const errors = (config: object) => h.apply(LISTENER_TYPE, [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [{ name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config } }, ROUTER] })]).join('\n');
  const vm = (code: object, extra: object = {}) => ({ name: 'p', vm_config: { runtime: 'envoy.wasm.runtime.v8', code, ...extra } });
  assert.match(errors(vm({ remote: { http_uri: { uri: 'https://example.com/p.wasm', cluster: 'x', timeout: '1s' }, sha256: 'ab' } })), /remote code needs sha256 \(64 hex digits\)/);
  assert.match(errors(vm({ local: { filename: notProxyWasm } })), /exports none of proxy_abi_version_0_2_1/);
  assert.match(errors(vm({ local: { filename: path.join(dir, 'missing.wasm') } })), /cannot read the Wasm module .*missing\.wasm/);
  assert.match(errors(vm({ local: { filename: refusing } })), /did not start: proxy_on_configure returned false/);
  assert.match(errors({ name: 'p', vm_config: { runtime: 'envoy.wasm.runtime.null', code: { local: { filename: good } } } }), /runtime envoy\.wasm\.runtime\.null is not available in rig proxy/);
  assert.match(errors({ ...vm({ local: { filename: good } }), configuration: { '@type': 'type.googleapis.com/google.protobuf.Struct', value: { a: 1 } } }), /must be a google\.protobuf\.StringValue or BytesValue/);
  assert.equal(errors(vm({ local: { filename: good } })), '');
});

test('wasm: a stream paused on an HTTP call when another stream traps the VM is answered at once (503, fail closed), not left waiting', async (t) => {
  const app = await startUpstream('app');
  const held: (() => void)[] = [];
  // Answers nothing until the test ends: the paused stream waits on it.
  const slow = await startUpstream('slow', (_req, res) => {
    held.push(() => res.end());
    return true;
  });
  t.after(async () => {
    for (const h of held) h();
    await app.close();
    await slow.close();
  });
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'call-or-trap', callOrTrapPlugin);
  const bootstrap = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: { listeners: [listener('l', wasmFilter(file, { name: 'call_or_trap' }))], clusters: [cluster('app', app.port), cluster('slow', slow.port)] },
  };
  const boot = path.join(dir, 'envoy.json');
  fs.writeFileSync(boot, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, boot);
  const port = proxy.ports.listeners.l!;
  const paused = request(port);
  await waitFor('the paused stream to call the slow cluster', async () => (slow.requests.length === 1 ? true : undefined));
  assert.equal((await request(port, { headers: { 'x-trap': '1' } })).status, 503);
  const r = await paused;
  assert.equal(r.status, 503);
  assert.equal(app.requests.length, 0);
});

test('wasm: a root context whose config is replaced (and collected) gets proxy_on_delete; the same config again keeps its root context', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const h = await startTestRuntime(t);
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'root-delete', rootDeletePlugin);
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  const withPlugin = (config: string) => httpListener('l', route, { http_filters: [{ name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: { name: 'rd', vm_config: { vm_id: 'rd', code: { local: { filename: file } } }, configuration: { '@type': STRING_VALUE, value: config } } } }, ROUTER] });
  const deleted = () => h.rt.stats.counter('wasmcustom.wasm_test_deleted').value;
  assert.deepEqual(h.apply(LISTENER_TYPE, [withPlugin('one')]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [withPlugin('one'), httpListener('other', route)]), []);
  for (let i = 0; i < 5; i++) gc();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(deleted(), 0, 'the same configuration keeps its root context');
  assert.deepEqual(h.apply(LISTENER_TYPE, [withPlugin('two')]), []);
  await waitFor('proxy_on_delete of the root context of configuration "one"', async () => {
    gc();
    return deleted() === 1 ? true : undefined;
  });
});

test('wasm: remote code is fetched through its cluster and started when its sha256 matches; a mismatch, fetched again once, leaves the plugin out (fail closed: 503)', async (t) => {
  const module = await buildPlugin(addHeaderPlugin);
  const sha256 = crypto.createHash('sha256').update(module).digest('hex');
  const app = await startUpstream('app');
  const code = await startUpstream('code', (req, res) => {
    res.writeHead(req.url === '/plugin.wasm' ? 200 : 404, { 'content-type': 'application/wasm' });
    res.end(req.url === '/plugin.wasm' ? module : undefined);
    return true;
  });
  const h = await startTestRuntime(t, [app, code]);
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  const remote = (name: string, sha: string) =>
    httpListener(name, route, {
      http_filters: [
        {
          name: 'envoy.filters.http.wasm',
          typed_config: { '@type': WASM, config: { name, configuration: { '@type': STRING_VALUE, value: name }, vm_config: { vm_id: name, code: { remote: { http_uri: { uri: 'http://code.local/plugin.wasm', cluster: 'code', timeout: '5s' }, sha256: sha } } } } },
        },
        ROUTER,
      ],
    });
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [app.port]), staticCluster('code', [code.port])]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [remote('good', sha256), remote('bad', 'ab'.repeat(32))]), []);
  await h.rt.settled();
  const good = await waitFor('the fetched plugin answering', async () => {
    const r = await request(h.port('good'));
    return r.headers['x-wasm-config'] === 'good' ? r : undefined;
  });
  assert.equal(good.status, 200);
  assert.equal(code.requests[0]?.headers.host, 'code.local');
  // The mismatch is fetched again once (Envoy's remote data source: num_retries 1 by default) before the plugin is left out.
  await waitFor('both modules fetched, the mismatch twice', async () => (code.requests.length === 3 ? true : undefined));
  const bad = await request(h.port('bad'));
  assert.equal(bad.status, 503);
  assert.equal(app.requests.some((r) => r.headers['x-wasm-config'] === 'bad'), false);
});
