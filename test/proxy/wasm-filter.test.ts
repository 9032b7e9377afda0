// envoy.filters.http.wasm in `rig proxy -c`: Proxy-Wasm plugins built from WebAssembly text at test
// time run on real requests: a header from the plugin configuration and from a property, a 401
// local response (Istio's basic auth example), a pause on request headers around an HTTP call to
// another cluster, a counter in /stats, a trap with fail_open (the request goes on) and without it
// (503), and a host function rig proxy lacks answering Unimplemented with a warning naming it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { addHeaderPlugin, denyPlugin, httpCallPlugin, metricPlugin, trapPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { HCM, request, ROUTER, startUpstream } from './harness.ts';

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
  assert.match(proxy.log(), /host function env\.proxy_call_foreign_function is not implemented in rig proxy/);
  await request(port.header!);
  assert.equal(proxy.log().match(/proxy_call_foreign_function is not implemented/g)?.length, 1, 'warned once');

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

  assert.equal((await request(port.trap_open!)).status, 200, 'fail_open: the request goes on without the plugin');
  assert.equal((await request(port.trap_open!)).status, 200);
  assert.equal((await request(port.trap_closed!)).status, 503, 'fail closed: 503');
  assert.equal((await request(port.trap_closed!)).status, 503, 'the failed VM keeps failing closed');
  assert.match(proxy.log(), /wasm plugin trap_closed .*proxy_on_request_headers failed: unreachable/);
});
