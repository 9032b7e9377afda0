// Envoy's runtime through the admin API of `rig proxy -c`: a static layer value steers a route's
// runtime_fraction, POST /runtime_modify overrides it (and an empty value removes the override),
// GET /runtime shows every layer's value. Without an admin layer, /runtime_modify answers 503.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { request, startUpstream } from './harness.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { createAdminHandler } from '../../src/proxy/admin/admin-server.ts';
import { LogLevels } from '../../src/proxy/admin/logging.ts';
import { silentLogger } from '../../src/core/log.ts';
import type { RuntimeDump } from '../../src/proxy/envoy-runtime/index.ts';

const KEY = 'routing.traffic_shift.helloworld';

function bootstrap(v1: number, v2: number): string {
  const cluster = (name: string, port: number) => ({ name, type: 'STATIC', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } });
  return JSON.stringify({
    static_resources: {
      listeners: [{
        name: 'http',
        address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
        filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          stat_prefix: 'http',
          route_config: { virtual_hosts: [{ name: 'helloworld', domains: ['*'], routes: [
            // Envoy's traffic shifting example: the first route takes the key's share, the rest falls through.
            { match: { prefix: '/', runtime_fraction: { default_value: { numerator: 50, denominator: 'HUNDRED' }, runtime_key: KEY } }, route: { cluster: 'v1' } },
            { match: { prefix: '/' }, route: { cluster: 'v2' } },
          ] }] },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        } }] }],
      }],
      clusters: [cluster('v1', v1), cluster('v2', v2)],
    },
    layered_runtime: { layers: [{ name: 'static_layer_0', static_layer: { routing: { traffic_shift: { helloworld: 100 } } } }, { name: 'admin_layer_0', admin_layer: {} }] },
  });
}

async function servers(port: number, n = 20): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add((await request(port)).json().server);
  return seen;
}

test('a static layer value and /runtime_modify steer a route runtime_fraction; /runtime shows the layers', async (t) => {
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  t.after(() => Promise.all([v1.close(), v2.close()]));
  const file = path.join(tempDir(t, 'runtime-admin-'), 'envoy.json');
  fs.writeFileSync(file, bootstrap(v1.port, v2.port));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners.http!;
  const admin = `http://127.0.0.1:${proxy.ports.admin}`;
  assert.deepEqual(await servers(port), new Set(['v1']), 'the static layer sets 100%');

  assert.equal((await fetch(`${admin}/runtime_modify?${KEY}=0`)).status, 405, 'a change needs POST');
  const set = await fetch(`${admin}/runtime_modify?${KEY}=0`, { method: 'POST' });
  assert.deepEqual([set.status, await set.text()], [200, 'OK\n']);
  assert.deepEqual(await servers(port), new Set(['v2']), 'the admin layer overrides the static one');
  const dump = (await (await fetch(`${admin}/runtime`)).json()) as RuntimeDump;
  assert.deepEqual(dump, { layers: ['static_layer_0', 'admin_layer_0'], entries: { [KEY]: { final_value: '0', layer_values: ['100', '0'] } } });
  assert.match(await (await fetch(`${admin}/stats?filter=^runtime\\.admin`)).text(), /runtime\.admin_overrides_active: 1\n/);

  // The pairs may come as a form body too; an empty value removes the override.
  const clear = await fetch(`${admin}/runtime_modify`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `${KEY}=` });
  assert.equal(clear.status, 200);
  assert.deepEqual(await servers(port), new Set(['v1']));
  assert.deepEqual(((await (await fetch(`${admin}/runtime`)).json()) as RuntimeDump).entries[KEY], { final_value: '100', layer_values: ['100', ''] });
  assert.equal((await fetch(`${admin}/runtime_modify`, { method: 'POST' })).status, 400, 'no key: the usage');
});

test('/runtime_modify without an admin layer answers 503 "No admin layer specified", as Envoy', async (t) => {
  const rt = new ProxyRuntime({ node: { id: 'n', cluster: 'c', metadata: {} }, runtimeLayers: [{ name: 'static', kind: 'static', values: new Map() }] });
  const server = http.createServer(createAdminHandler({ runtime: rt, bootstrap: {}, commandLine: [], onQuit: () => undefined, logLevels: new LogLevels(silentLogger.child({})) }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.close();
    rt.stop();
  });
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/runtime_modify?a=b`, { method: 'POST' });
  assert.deepEqual([res.status, await res.text()], [503, 'No admin layer specified\n']);
});
