// Bootstrap fields rig has no counterpart for warn by path when they would change something
// (admin access logs and socket options, cluster_manager settings); Istio's usual values (an admin
// access log to /dev/null, a layered runtime, node details) stay quiet.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBootstrap } from '../../src/proxy/bootstrap/bootstrap.ts';

const admin = (extra: Record<string, unknown>) => ({ address: { socket_address: { address: '127.0.0.1', port_value: 15000 } }, ...extra });

test('bootstrap: quiet for Istio-style values, warnings by path for admin logs, socket options and cluster_manager', () => {
  const quiet = parseBootstrap(
    {
      node: { id: 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local', cluster: 'a.ns', locality: { region: 'r', zone: 'z' }, user_agent_name: 'envoy' },
      admin: admin({ access_log_path: '/dev/null', profile_path: '/var/lib/istio/data/envoy.prof' }),
      layered_runtime: { layers: [{ name: 'global config', static_layer: { 'overload.global_downstream_max_connections': 2147483647 } }] },
      stats_flush_interval: '5s',
    },
    'quiet.yaml',
  );
  assert.deepEqual(quiet.warnings, []);
  const loud = parseBootstrap(
    {
      admin: admin({ access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/tmp/admin.log' } }], socket_options: [{ level: 1, name: 9, int_value: 1 }] }),
      cluster_manager: { local_cluster_name: 'svc', upstream_bind_config: { source_address: { address: '10.0.0.1', port_value: 0 } } },
    },
    'loud.yaml',
  );
  assert.deepEqual(loud.warnings.map((w) => w.split(': ')[0]).sort(), ['admin.access_log', 'admin.socket_options', 'cluster_manager.local_cluster_name', 'cluster_manager.upstream_bind_config']);
});

test('bootstrap: stats_flush_interval sets the histograms\' interval (Envoy default 5 s, 1 ms..300 s)', () => {
  assert.equal(parseBootstrap({}, 'default.yaml').statsFlushIntervalMs, 5000);
  assert.equal(parseBootstrap({ stats_flush_interval: '0.25s' }, 'short.yaml').statsFlushIntervalMs, 250);
  assert.throws(() => parseBootstrap({ stats_flush_interval: '301s' }, 'long.yaml'), /long\.yaml: stats_flush_interval: must be between 1ms and 300s/);
});
