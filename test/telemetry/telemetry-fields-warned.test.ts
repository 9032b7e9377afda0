// Telemetry fields rig proxy reads without implementing are warned about by their path when set
// to something other than their default, and quiet at the default (what Istio sends): the HCM
// tracing verbose and spawn_upstream_span, istio.stats stat_prefix / rotate_interval /
// graceful_deletion_interval, peer_metadata istio_headers.skip_external_clusters on a discovery
// method (Istio reads it for propagation only; propagation honours it, see peer-metadata-skip-external).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { PEER_METADATA_TYPE } from '../../src/proxy/telemetry/peer-metadata-filter.ts';
import { STATS_PLUGIN_TYPE } from '../../src/proxy/telemetry/stats-config.ts';
import { CLUSTER_TYPE, httpListener, LISTENER_TYPE, ROUTER, routeConfig, startTestRuntime, staticCluster } from '../proxy/harness.ts';

const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';
const ZIPKIN = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';

function listener(name: string, o: { tracing: EnvoyJson; stats: EnvoyJson; headers: EnvoyJson }): EnvoyJson {
  return httpListener(name, routeConfig(name, [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), {
    stat_prefix: `inbound_${name}`,
    tracing: { provider: { name: 'envoy.tracers.zipkin', typed_config: { '@type': ZIPKIN, collector_cluster: 'app', collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON' } }, ...o.tracing },
    http_filters: [
      { name: 'envoy.filters.http.peer_metadata', typed_config: { '@type': TYPED_STRUCT, type_url: PEER_METADATA_TYPE, value: { downstream_discovery: [{ istio_headers: o.headers }], upstream_propagation: [{ istio_headers: o.headers }] } } },
      { name: 'istio.stats', typed_config: { '@type': TYPED_STRUCT, type_url: STATS_PLUGIN_TYPE, value: { reporter: 'SERVER', ...o.stats } } },
      ROUTER,
    ],
  });
}

test('telemetry fields without an effect in rig proxy: warned by path when set, quiet at their defaults', async (t) => {
  const h = await startTestRuntime(t);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [9])]), []);
  const set = listener('set', {
    tracing: { verbose: true, spawn_upstream_span: true },
    stats: { stat_prefix: 'mesh', debug: true, rotate_interval: '60s', graceful_deletion_interval: '5s' },
    headers: { skip_external_clusters: true },
  });
  const defaults = listener('defaults', { tracing: { verbose: false, spawn_upstream_span: false }, stats: { stat_prefix: 'istio', debug: false, rotate_interval: '0s' }, headers: {} });
  assert.deepEqual(h.apply(LISTENER_TYPE, [set, defaults]), []);
  const warnings = h.rt.warnings.get(LISTENER_TYPE) ?? [];
  const hcm = 'listener "set": filter_chains[0].filters[0].typed_config';
  const expected = [
    `${hcm}.tracing.verbose: spans carry no stream event logs in rig proxy; ignored`,
    `${hcm}.tracing.spawn_upstream_span: rig proxy makes one span per request, not one more per upstream attempt; ignored`,
    `${hcm}.http_filters[1].typed_config.value.stat_prefix: metric names keep Istio's istio_ prefix in rig proxy (a mesh_ prefix is not supported); ignored`,
    `${hcm}.http_filters[1].typed_config.value.rotate_interval: rig proxy never expires metric series: they stay until the proxy restarts; ignored`,
    `${hcm}.http_filters[1].typed_config.value.graceful_deletion_interval: rig proxy never expires metric series: they stay until the proxy restarts; ignored`,
    `${hcm}.http_filters[0].typed_config.value.downstream_discovery[0].istio_headers.skip_external_clusters: skip_external_clusters applies to propagation only, as in Istio; ignored in discovery`,
  ];
  for (const w of expected) assert.ok(warnings.includes(w), `missing warning ${w}\nin:\n${warnings.join('\n')}`);
  assert.deepEqual(warnings.filter((w) => w.includes('upstream_propagation')), [], 'propagation honours skip_external_clusters');
  assert.deepEqual(warnings.filter((w) => w.includes('"defaults"')), [], 'defaults are quiet');
});
