// Envoy's Prometheus names for HTTP filter stats on the real /stats/prometheus output: the
// connection manager's stat_prefix (with dots, as Istio's "inbound_0.0.0.0_8080") becomes the
// envoy_http_conn_manager_prefix label, the filter's sub-scope stays in the metric name.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HTTP_RBAC_TYPE } from '../../src/envoy/index.ts';
import { createStatsHandler } from '../../src/proxy/telemetry/index.ts';
import { configure, httpListener, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';

const PREFIX = 'inbound_0.0.0.0_8080';

test('/stats/prometheus: RBAC and ext_authz stats keep their sub-scope in the name, the HCM prefix in the label', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
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
  const label = `{envoy_http_conn_manager_prefix="${PREFIX}"}`;
  for (const [name, value] of [
    ['envoy_http_rbac_allowed', 1],
    ['envoy_http_rbac_denied', 1],
    ['envoy_http_rbac_istio_dry_run_allow_shadow_denied', 2],
    ['envoy_http_ext_authz_denied', 1],
    ['envoy_http_ext_authz_rbac_ok', 1],
    ['envoy_http_downstream_rq_total', 2],
  ] as const) {
    assert.ok(text.includes(`\n${name}${label} ${value}\n`), `${name}${label} ${value} in\n${text.split('\n').filter((l) => l.startsWith('envoy_http')).join('\n')}`);
    assert.ok(text.includes(`# TYPE ${name} counter\n`), `one TYPE line for ${name}`);
  }
  assert.doesNotMatch(text, /^envoy_http_(allowed|denied|shadow_denied|ok)\{/m);
  assert.doesNotMatch(text, /envoy_http_conn_manager_prefix="[^"]*\.(rbac|ext_authz)/);
});
