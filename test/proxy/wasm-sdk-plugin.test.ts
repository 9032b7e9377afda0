// A plugin built with a real Proxy-Wasm SDK (AssemblyScript's @solo-io/proxy-runtime, ABI 0.2.0;
// test/wasm-sdk/assemblyscript/sdk-plugin.ts), compiled at test time and run by `rig proxy -c`
// from an Envoy bootstrap: header edits, properties, a counter, a local response, and a pause
// around an HTTP call to another cluster whose callback resumes or denies. The other Wasm tests'
// plugins are hand-written WebAssembly text; this one uses the SDK's own ABI glue (its allocator,
// context map, header map serialization, root/stream context callbacks).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compileAssemblyScript } from '../helpers/assemblyscript.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { HCM, request, ROUTER, startUpstream } from './harness.ts';

const SOURCE = path.resolve(import.meta.dirname, '../wasm-sdk/assemblyscript/sdk-plugin.ts');
const address = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
const cluster = (name: string, port: number) => ({ name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: address(port) } }] }] } });

test('a plugin built with the AssemblyScript Proxy-Wasm SDK edits headers, reads and sets properties, counts, denies, and pauses around an HTTP call', async (t) => {
  const app = await startUpstream('app');
  let authStatus = 200;
  const auth = await startUpstream('auth', (_req, res) => {
    res.writeHead(authStatus, { 'content-type': 'text/plain' });
    res.end('auth says so');
    return true;
  });
  t.after(async () => {
    await app.close();
    await auth.close();
  });
  const dir = tempDir(t, 'wasm-sdk-');
  const plugin = await compileAssemblyScript(SOURCE, path.join(dir, 'sdk-plugin.wasm'));
  const wasm = {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
      config: {
        name: 'sdk',
        root_id: 'sdk',
        configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'sdk-config-1' },
        vm_config: { vm_id: 'sdk', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: plugin } } },
      },
    },
  };
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: {
      listeners: [
        {
          name: 'sdk',
          address: address(0),
          filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'sdk', http_filters: [wasm, ROUTER], route_config: { name: 'r', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } } }] }],
        },
      ],
      clusters: [cluster('app', app.port), cluster('auth', auth.port)],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners.sdk!;

  const plain = await request(port, { method: 'POST', path: '/books/1?x=y', headers: { 'user-agent': 'curl', 'x-secret': 's3cret' }, body: 'b' });
  assert.equal(plain.status, 200);
  const seen = plain.json().headers;
  assert.equal(seen['x-as-path'], '/books/1?x=y');
  assert.equal(seen['x-as-method'], 'POST', 'the request.method property');
  assert.equal(seen['x-as-marker'], 'seen', 'a property the plugin set, read back');
  assert.equal(seen['user-agent'], 'sdk-plugin', 'replaced');
  assert.equal(seen['x-secret'], undefined, 'removed');
  assert.equal(plain.headers['x-sdk-config'], 'sdk-config-1', 'the plugin configuration, on the response');
  assert.match(proxy.log(), /sdk plugin configured: sdk-config-1/);

  const before = app.requests.length;
  const denied = await request(port, { headers: { 'x-deny': '1' } });
  assert.equal(denied.status, 403);
  assert.equal(denied.body, 'denied by the sdk plugin');
  assert.equal(denied.headers['x-sdk'], 'deny');
  assert.equal(app.requests.length, before, 'a local response: the upstream is not called');

  const called = await request(port, { headers: { 'x-call': 'may-i' } });
  assert.equal(called.status, 200);
  assert.equal(called.json().headers['x-auth-status'], '200', 'added in the HTTP call callback, before continue_request');
  assert.equal(auth.requests.at(-1)?.url, '/check');
  assert.equal(auth.requests.at(-1)?.headers['x-ask'], 'may-i');

  authStatus = 500;
  const refused = await request(port, { headers: { 'x-call': 'again' } });
  assert.equal(refused.status, 403);
  assert.equal(refused.body, 'denied by the auth service (500)');
  assert.equal(refused.headers['x-sdk'], 'auth');

  const stats = await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats`).then((r) => r.text());
  assert.match(stats, /^wasmcustom\.sdk_requests: 4$/m);
});
