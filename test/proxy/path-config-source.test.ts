// Envoy's "dynamic configuration from the filesystem" quick start, unchanged but for ports and
// paths: lds_config / cds_config read from DiscoveryResponse files, reloaded when a file is moved
// into place, a broken file rejected with the previous config kept; admin /drain_listeners.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { request, startUpstream } from './harness.ts';

const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

function lds(): object {
  return {
    resources: [
      {
        '@type': LISTENER,
        name: 'listener_0',
        address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                  stat_prefix: 'ingress_http',
                  http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                  route_config: { name: 'local_route', virtual_hosts: [{ name: 'local_service', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { host_rewrite_literal: 'www.envoyproxy.io', cluster: 'example_proxy_cluster' } }] }] },
                },
              },
            ],
          },
        ],
      },
    ],
  };
}

function cds(port: number): object {
  return {
    resources: [
      {
        '@type': CLUSTER,
        name: 'example_proxy_cluster',
        type: 'STRICT_DNS',
        load_assignment: { cluster_name: 'example_proxy_cluster', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'localhost', port_value: port } } } }] }] },
      },
    ],
  };
}

/** Writes then renames, as Envoy's docs recommend (a reader never sees half a file). */
function put(file: string, doc: object | string): void {
  fs.writeFileSync(file + '.tmp', typeof doc === 'string' ? doc : stringify(doc));
  fs.renameSync(file + '.tmp', file);
}

test('filesystem lds_config / cds_config: applied at start, reloaded on change, a broken file keeps the previous config', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-fs-xds-'));
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  put(path.join(dir, 'cds.yaml'), cds(a.port));
  put(path.join(dir, 'lds.yaml'), lds());
  const boot = {
    node: { cluster: 'test-cluster', id: 'test-id' },
    dynamic_resources: { cds_config: { resource_api_version: 'V3', path: path.join(dir, 'cds.yaml') }, lds_config: { resource_api_version: 'V3', path_config_source: { path: path.join(dir, 'lds.yaml') } } },
    admin: { address: { socket_address: { address: '0.0.0.0', port_value: 19000 } } },
  };
  fs.writeFileSync(path.join(dir, 'envoy.yaml'), stringify(boot));
  t.after(async () => {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const { ports, log } = await startRigProxyFromFile(t, path.join(dir, 'envoy.yaml'), ['--log-format', 'text', '--drain-timeout', '0']);
  const port = ports.listeners.listener_0;
  assert.ok(port > 0, log());
  const served = async (): Promise<string> => (await request(port)).json().server;
  assert.equal(await served(), 'a');

  put(path.join(dir, 'cds.yaml'), cds(b.port));
  let now = 'a';
  for (let i = 0; i < 200 && now !== 'b'; i++) {
    await new Promise((r) => setTimeout(r, 25));
    now = await served();
  }
  assert.equal(now, 'b');

  put(path.join(dir, 'cds.yaml'), 'resources: [{"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", name: example_proxy_cluster, type: NOT_A_TYPE}]');
  for (let i = 0; i < 200 && !log().includes('cds_config: rejected'); i++) await new Promise((r) => setTimeout(r, 25));
  assert.match(log(), /cds_config: rejected; previous config kept/);
  assert.equal(await served(), 'b');

  // Admin /drain_listeners: the listener stops accepting new connections.
  const admin = ports.admin;
  assert.equal((await fetch(`http://127.0.0.1:${admin}/drain_listeners`)).status, 405);
  assert.equal((await fetch(`http://127.0.0.1:${admin}/drain_listeners`, { method: 'POST' })).status, 200);
  await assert.rejects(request(port), /ECONNREFUSED/);
});
