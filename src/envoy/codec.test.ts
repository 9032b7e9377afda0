import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, LISTENER_TYPE, checkMessage, packAny, unpackAny, EnvoyJsonError } from './index.ts';

test('a cluster in Envoy JSON shape survives protobuf encoding unchanged', () => {
  const cluster = {
    name: 'outbound|9080|v1|reviews.default.svc.cluster.local',
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} }, service_name: 'outbound|9080|v1|reviews.default.svc.cluster.local' },
    connect_timeout: '10.25s',
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: { thresholds: [{ max_connections: 100, max_retries: 3 }] },
    metadata: { filter_metadata: { istio: { services: [{ host: 'reviews.default.svc.cluster.local', name: 'reviews' }], subset: 'v1' } } },
  };
  assert.deepEqual(unpackAny(packAny(CLUSTER_TYPE, cluster)), cluster);
});

test('nested Any fields keep their @type', () => {
  const listener = {
    name: '0.0.0.0_9080',
    address: { socket_address: { address: '0.0.0.0', port_value: 9080 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'outbound_0.0.0.0_9080',
              rds: { route_config_name: '9080', config_source: { ads: {} } },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
            },
          },
        ],
      },
    ],
  };
  assert.deepEqual(unpackAny(packAny(LISTENER_TYPE, listener)), listener);
});

test('unknown fields, bad durations and bad enums are all reported with their paths', () => {
  const issues = checkMessage('envoy.config.cluster.v3.Cluster', {
    name: 'x',
    conect_timeout: '1s',
    lb_policy: 'ROUND_ROBINN',
    circuit_breakers: { thresholds: [{ max_connections: 'many' }] },
    common_lb_config: { healthy_panic_threshold: { value: 'x' } },
    dns_refresh_rate: '5 seconds',
  });
  const paths = issues.map((i) => i.path).sort();
  assert.deepEqual(paths, ['circuit_breakers.thresholds[0].max_connections', 'common_lb_config.healthy_panic_threshold.value', 'conect_timeout', 'dns_refresh_rate', 'lb_policy']);
  assert.throws(() => packAny(CLUSTER_TYPE, { name: 'x', conect_timeout: '1s' }), EnvoyJsonError);
});

test('Envoy file forms inside an Any are rewritten in the config itself (codec_type: auto in an HCM ends, as AUTO)', () => {
  const hcm = { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', stat_prefix: 'in', codec_type: 'auto', route_config: {} };
  const listener = { name: 'l', filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] };
  const issues = checkMessage('envoy.config.listener.v3.Listener', listener, { envoyFileForms: true });
  assert.deepEqual(issues, []);
  assert.equal(hcm.codec_type, 'AUTO');
});
