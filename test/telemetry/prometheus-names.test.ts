// Envoy's Prometheus names on the real /stats/prometheus output, with the stats_config of Istio's
// bootstrap (what `rig proxy --xds-address` sets): Istio's tags only match IP-like HCM prefixes, so
// "inbound_0.0.0.0_8080" stays in the metric's name, and its RBAC tags turn the dry-run counters into
// the series Istio's dry-run task queries:
// envoy_http_inbound_0_0_0_0_80_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"}.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HTTP_RBAC_TYPE } from '../../src/envoy/index.ts';
import { createStatsHandler } from '../../src/proxy/telemetry/index.ts';
import { ISTIO_STATS_CONFIG } from '../../src/proxy/bootstrap/istio-stats-config.ts';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { readStatsConfig } from '../../src/proxy/stats/stats-config.ts';
import { configure, httpListener, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';

const PREFIX = 'inbound_0.0.0.0_8080';

test("/stats/prometheus with Istio's stats tags: the dry-run task's series, RBAC results as labels, the HCM prefix in the name", async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const issues = new Issues();
  h.rt.stats.configure(readStatsConfig(new Reader(ISTIO_STATS_CONFIG, 'stats_config', issues)));
  assert.deepEqual(issues.errors, []);
  const rbac = {
    name: 'envoy.filters.http.rbac',
    typed_config: {
      '@type': HTTP_RBAC_TYPE,
      rules: { action: 'DENY', policies: { 'deny-put': { permissions: [{ header: { name: ':method', string_match: { exact: 'PUT' } } }], principals: [{ any: true }] } } },
      shadow_rules: { action: 'DENY', policies: { all: { permissions: [{ any: true }], principals: [{ any: true }] } } },
      shadow_rules_stat_prefix: 'istio_dry_run_allow_',
    },
  };
  const listener = httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { stat_prefix: PREFIX, http_filters: [rbac, ROUTER] });
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [listener] });
  assert.equal((await request(h.port('l'))).status, 200);
  assert.equal((await request(h.port('l'), { method: 'PUT' })).status, 403);
  // The ext_authz filter's stats (its own stat_prefix "rbac" must not be taken for the RBAC scope).
  h.rt.stats.counter(`http.${PREFIX}.ext_authz.denied`).value++;
  h.rt.stats.counter(`http.${PREFIX}.ext_authz.rbac.ok`).value++;

  const server = http.createServer(createStatsHandler(h.rt.stats));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const text = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/stats/prometheus`)).text();
  const series = text.split('\n').filter((l) => l.startsWith('envoy_http') || l.startsWith('envoy_cluster'));
  for (const line of [
    'envoy_http_inbound_0_0_0_0_8080_rbac{authz_enforce_result="allowed"} 1',
    'envoy_http_inbound_0_0_0_0_8080_rbac{authz_enforce_result="denied"} 1',
    'envoy_http_inbound_0_0_0_0_8080_rbac{authz_dry_run_action="allow",authz_dry_run_result="denied"} 2',
    'envoy_http_inbound_0_0_0_0_8080_ext_authz_denied 1',
    'envoy_http_inbound_0_0_0_0_8080_ext_authz_rbac_ok 1',
    'envoy_http_inbound_0_0_0_0_8080_downstream_rq_total 2',
    'envoy_cluster_upstream_rq{response_code="200",cluster_name="app"} 1',
    'envoy_cluster_upstream_rq{response_code_class="2xx",cluster_name="app"} 1',
  ]) {
    assert.ok(series.includes(line), `${line} in\n${series.join('\n')}`);
  }
  assert.equal(text.match(/^# TYPE envoy_http_inbound_0_0_0_0_8080_rbac counter$/gm)?.length, 1, 'one TYPE line for the family');
});
