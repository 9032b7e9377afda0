// Envoy's tag extraction: the names and labels /stats/prometheus gives a stat, with Envoy's default
// tags and with a bootstrap's stats_config (custom regex and fixed-value tags, the stats matcher,
// histogram buckets), through a real `rig proxy -c` and its admin port.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { readStatsConfig } from '../../src/proxy/stats/stats-config.ts';
import { TagProducer } from '../../src/proxy/stats/tag-extraction.ts';
import { ISTIO_STATS_CONFIG } from '../../src/proxy/bootstrap/istio-stats-config.ts';
import fs from 'node:fs';
import path from 'node:path';
import { startUpstream } from './harness.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const show = (p: TagProducer, stat: string) => {
  const { name, tags } = p.extract(stat);
  return `${name}{${tags.map((t) => `${t.name}=${t.value}`).join(',')}}`;
};

test("Envoy's default tags", () => {
  const p = TagProducer.defaults();
  assert.equal(show(p, 'cluster.backend.upstream_rq_200'), 'cluster.upstream_rq{envoy.response_code=200,envoy.cluster_name=backend}');
  assert.equal(show(p, 'cluster.backend.upstream_rq_2xx'), 'cluster.upstream_rq_xx{envoy.response_code_class=2,envoy.cluster_name=backend}');
  assert.equal(show(p, 'cluster.backend.upstream_cx_total'), 'cluster.upstream_cx_total{envoy.cluster_name=backend}');
  assert.equal(show(p, 'http.ingress_http.downstream_rq_total'), 'http.downstream_rq_total{envoy.http_conn_manager_prefix=ingress_http}');
  assert.equal(show(p, 'http.ingress_http.rbac.allowed'), 'http.rbac.allowed{envoy.http_conn_manager_prefix=ingress_http}');
  assert.equal(show(p, 'http.ingress_http.rbac.dry.shadow_denied'), 'http.rbac.shadow_denied{envoy.http_conn_manager_prefix=ingress_http,envoy.rbac_http_prefix=dry}');
  assert.equal(show(p, 'listener.0.0.0.0_10000.downstream_cx_total'), 'listener.downstream_cx_total{envoy.listener_address=0.0.0.0_10000}');
  assert.equal(show(p, 'listener.[__1]_10000.downstream_cx_total'), 'listener.downstream_cx_total{envoy.listener_address=[__1]_10000}');
  assert.equal(show(p, 'listener.admin.downstream_cx_total'), 'listener.admin.downstream_cx_total{}', 'the admin listener is not tagged');
  assert.equal(show(p, 'tcp.ingress_tcp.downstream_cx_total'), 'tcp.downstream_cx_total{envoy.tcp_prefix=ingress_tcp}');
  assert.equal(show(p, 'vhost.vh.vcluster.other.upstream_rq_503'), 'vhost.vcluster.upstream_rq{envoy.response_code=503,envoy.virtual_cluster=other,envoy.virtual_host=vh}');
  assert.equal(show(p, 'server.live'), 'server.live{}');
});

test("Istio's stats tags (the bootstrap rig proxy --xds-address builds)", () => {
  const issues = new Issues();
  const p = readStatsConfig(new Reader(ISTIO_STATS_CONFIG, 'stats_config', issues))!.tags;
  assert.deepEqual(issues.errors, []);
  assert.equal(show(p, 'cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_200'), 'cluster.upstream_rq{response_code=200,cluster_name=outbound|9080||reviews.default.svc.cluster.local}');
  assert.equal(show(p, 'cluster.inbound|9080||.upstream_cx_active'), 'cluster.upstream_cx_active{cluster_name=inbound|9080||}');
  assert.equal(show(p, 'http.inbound_0.0.0.0_80.rbac.istio_dry_run_deny_.shadow_denied'), 'http.inbound_0.0.0.0_80.rbac{authz_dry_run_action=deny,authz_dry_run_result=denied}');
  assert.equal(show(p, 'listener.0.0.0.0_15006.downstream_cx_total'), 'listener.downstream_cx_total{listener_address=0.0.0.0_15006}');
  assert.equal(show(p, 'http.10.0.0.1_8080.downstream_rq_total'), 'http.downstream_rq_total{http_conn_manager_prefix=10.0.0.1_8080}');
});

test('stats_config errors name the field', () => {
  const read = (cfg: unknown) => {
    const issues = new Issues();
    readStatsConfig(new Reader(cfg, 'stats_config', issues));
    return issues.errors.join('\n');
  };
  assert.match(read({ stats_tags: [{ tag_name: 'envoy.cluster_name', regex: '^cluster\\.((.+?)\\.)' }] }), /stats_config\.stats_tags: envoy\.cluster_name is a default tag already/);
  assert.equal(read({ use_all_default_tags: false, stats_tags: [{ tag_name: 'envoy.cluster_name' }] }), '', 'a default tag by name takes its default regex');
  assert.match(read({ stats_tags: [{ tag_name: 'mine' }] }), /stats_tags\[0\]: tag "mine" has no regex and is not one of Envoy's default tags/);
  assert.match(read({ stats_tags: [{ tag_name: 'x', regex: '^cluster\\.' }] }), /stats_tags\[0\]\.regex: the regex of tag "x" needs a capture group/);
  assert.match(read({ stats_tags: [{ tag_name: 'x', regex: '(' }] }), /stats_tags\[0\]\.regex: invalid regex for tag "x"/);
  assert.match(read({ stats_matcher: { reject_all: true, exclusion_list: { patterns: [] } } }), /stats_matcher: set exactly one of/);
  assert.match(read({ histogram_bucket_settings: [{ match: { prefix: 'cluster.' }, buckets: [5, 1] }] }), /histogram_bucket_settings\[0\]\.buckets: bounds must be positive and increasing/);
});

test('rig proxy -c: custom and fixed-value tags, the stats matcher and histogram buckets shape /stats/prometheus and /stats', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const bootstrap = path.join(tempDir(t, 'stats-tags-'), 'bootstrap.json');
  fs.writeFileSync(bootstrap, JSON.stringify({
    stats_config: {
      stats_tags: [
        { tag_name: 'team', fixed_value: 'payments' },
        { tag_name: 'app_version', regex: '^cluster\\.app\\.(v([[:digit:]]+)\\.)' },
      ],
      stats_matcher: { exclusion_list: { patterns: [{ prefix: 'cluster.app.upstream_cx_' }, { safe_regex: { regex: '.*_rq_[1-5]xx$' } }] } },
      histogram_bucket_settings: [{ match: { prefix: 'cluster.app.' }, buckets: [1, 10, 100] }],
    },
    static_resources: {
      listeners: [{ name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', stat_prefix: 'ingress_http', route_config: { virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }, http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }] } }] }] }],
      clusters: [{ name: 'app', type: 'STATIC', load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: app.port } } } }] }] } }],
    },
  }));
  const { ports } = await startRigProxyFromFile(t, bootstrap);
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`http://127.0.0.1:${ports.listeners.l}/`)).status, 200);
  const prom = await (await fetch(`http://127.0.0.1:${ports.admin}/stats/prometheus`)).text();
  assert.match(prom, /^envoy_cluster_upstream_rq\{team="payments",envoy_response_code="200",envoy_cluster_name="app"\} 3$/m);
  assert.match(prom, /^envoy_http_downstream_rq_total\{team="payments",envoy_http_conn_manager_prefix="ingress_http"\} 3$/m);
  assert.doesNotMatch(prom, /envoy_cluster_upstream_cx_total\{[^}]*envoy_cluster_name="app"/, 'excluded by the stats matcher');
  assert.doesNotMatch(prom, /envoy_cluster_upstream_rq_xx\{/, 'excluded by the stats matcher');
  assert.match(prom, /^envoy_cluster_upstream_rq_time_bucket\{team="payments",envoy_cluster_name="app",le="100"\} 3$/m, 'the configured buckets');
  assert.doesNotMatch(prom, /envoy_cluster_upstream_rq_time_bucket\{[^}]*envoy_cluster_name="app",le="250"\}/);
  const text = await (await fetch(`http://127.0.0.1:${ports.admin}/stats`)).text();
  assert.match(text, /^cluster\.app\.upstream_rq_200: 3$/m);
  assert.doesNotMatch(text, /^cluster\.app\.upstream_cx_total:/m, '/stats hides what the matcher rejects, as Envoy never creates it');
});
