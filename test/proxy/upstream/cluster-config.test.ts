import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Issues } from '../../../src/proxy/config/reader.ts';
import { compileCluster } from '../../../src/proxy/upstream/cluster-config.ts';

const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

test('cluster common_http_protocol_options: idle timeout and request limits apply; options the upstream pool cannot honour are warned by name', () => {
  const issues = new Issues();
  const cfg = compileCluster({
    name: 'outbound|9080||reviews.default.svc.cluster.local',
    type: 'STATIC',
    load_assignment: { cluster_name: 'reviews', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9080 } } } }] }] },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': HTTP_OPTIONS,
        common_http_protocol_options: { idle_timeout: '5s', max_requests_per_connection: 7, max_connection_duration: '30s', max_headers_count: 50 },
        explicit_http_config: { http_protocol_options: {} },
      },
    },
  }, 'clusters[0]', issues);
  assert.deepEqual(issues.errors, []);
  assert.equal(cfg.idleTimeoutMs, 5000);
  assert.equal(cfg.maxRequestsPerConnection, 7);
  const prefix = 'clusters[0].typed_extension_protocol_options.envoy.extensions.upstreams.http.v3.HttpProtocolOptions.common_http_protocol_options';
  assert.equal(cfg.maxConnectionDurationMs, 30_000);
  assert.deepEqual(issues.warnings.filter((w) => w.startsWith(prefix)).map((w) => w.slice(prefix.length)).sort(), [
    '.max_headers_count: field "max_headers_count" is not supported by rig proxy and is ignored',
  ]);
});

test('endpoint socket addresses: resolver_name is warned about by path (the system resolver is used); ipv4_compat is quiet', () => {
  const issues = new Issues();
  const ep = (sa: Record<string, unknown>) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 80, ...sa } } } });
  compileCluster({ name: 'c', type: 'STATIC', load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [ep({ resolver_name: 'envoy.network.dns_resolver.cares' }), ep({ ipv4_compat: true, resolver_name: '' })] }] } }, 'c', issues);
  assert.deepEqual(issues.errors, []);
  assert.deepEqual(issues.warnings, ['c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.resolver_name: custom resolvers are not supported; "envoy.network.dns_resolver.cares" is ignored and the system resolver is used']);
});

test('alt_stat_name and endpoint health_check_config warn when set to something rig cannot honour; default values stay quiet', () => {
  const ep = (hc: Record<string, unknown>) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 80 } }, health_check_config: hc } });
  const cluster = (extra: Record<string, unknown>, hc: Record<string, unknown>) => ({ name: 'c', type: 'STRICT_DNS', load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [ep(hc)] }] }, ...extra });
  const quiet = new Issues();
  compileCluster(cluster({ alt_stat_name: '', respect_dns_ttl: false, track_cluster_stats: { timeout_budgets: true }, cleanup_interval: '5s' }, { port_value: 0, disable_active_health_check: false }), 'c', quiet);
  assert.deepEqual([quiet.errors, quiet.warnings], [[], []]);
  const issues = new Issues();
  compileCluster(cluster({ alt_stat_name: 'reviews', respect_dns_ttl: true }, { port_value: 8081, hostname: 'hc', disable_active_health_check: true }), 'c', issues);
  assert.deepEqual(issues.errors, []);
  const hc = 'c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.health_check_config';
  assert.deepEqual(issues.warnings.map((w) => w.split(': ')[0]).sort(), ['c.alt_stat_name', `${hc}.disable_active_health_check`, `${hc}.hostname`, `${hc}.port_value`]);
});

test("DNS refresh fields: respect_dns_ttl, dns_jitter and dns_failure_refresh_rate are read quietly; Envoy's bounds are errors by path", () => {
  const dnsCluster = (extra: Record<string, unknown>) => ({ name: 'c', type: 'STRICT_DNS', load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'svc.test', port_value: 80 } } } }] }] }, ...extra });
  const quiet = new Issues();
  const cfg = compileCluster(dnsCluster({ dns_refresh_rate: '60s', respect_dns_ttl: true, dns_jitter: '0.1s', dns_failure_refresh_rate: { base_interval: '2s' } }), 'c', quiet);
  assert.deepEqual([quiet.errors, quiet.warnings], [[], []]);
  assert.deepEqual(cfg.dnsRefresh, { refreshMs: 60_000, respectTtl: true, jitterMs: 100, failure: { baseIntervalMs: 2000, maxIntervalMs: 20_000 } });
  assert.deepEqual(compileCluster(dnsCluster({}), 'c', new Issues()).dnsRefresh, { refreshMs: 5000, respectTtl: false, jitterMs: 0, failure: undefined });
  const issues = new Issues();
  compileCluster(dnsCluster({ dns_refresh_rate: '0.001s', dns_jitter: '-1s', dns_failure_refresh_rate: { base_interval: '5s', max_interval: '1s' } }), 'c', issues);
  assert.deepEqual(issues.errors, [
    'c.dns_refresh_rate: must be greater than 1ms',
    'c.dns_jitter: must not be negative',
    'c.dns_failure_refresh_rate.max_interval: max_interval (1000 ms) must be at least base_interval (5000 ms)',
  ]);
  const noBase = new Issues();
  compileCluster(dnsCluster({ dns_failure_refresh_rate: { max_interval: '1s' } }), 'c', noBase);
  assert.match(noBase.errors.join('\n'), /c\.dns_failure_refresh_rate\.base_interval: dns_failure_refresh_rate needs a base_interval/);
});
