// Fields of the security filters that rig proxy reads but does not implement warn by path when set
// to a non-default value (the config still applies), and stay quiet at their defaults, as
// control-plane-generated config has them: HTTP RBAC track_per_rule_stats, jwt_authn remote_jwks
// retry_policy's host selection (its retries and async_fetch are implemented: no warning).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HTTP_RBAC_TYPE, JWT_AUTHN_TYPE, LISTENER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { addr, CLUSTER_TYPE, HCM, ROUTER, routeConfig, startRuntime, staticCluster } from '../proxy/harness.ts';

const RULES = { action: 'ALLOW', policies: { p: { permissions: [{ any: true }], principals: [{ any: true }] } } };

function http(name: string, filters: EnvoyJson[]): EnvoyJson {
  return { name, address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]), http_filters: [...filters, ROUTER] } }] }] };
}

const rbac = (extra: EnvoyJson) => ({ name: 'envoy.filters.http.rbac', typed_config: { '@type': HTTP_RBAC_TYPE, rules: RULES, ...extra } });
const jwt = (extra: EnvoyJson) => ({
  name: 'envoy.filters.http.jwt_authn',
  typed_config: { '@type': JWT_AUTHN_TYPE, providers: { p: { issuer: 'https://issuer.test', remote_jwks: { http_uri: { uri: 'https://issuer.test/jwks', cluster: 'jwks', timeout: '1s' }, cache_duration: '300s', ...extra } } } },
});

test('non-default values of unimplemented security fields warn by path; defaults stay quiet', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('jwks', [1])]), []);
  const errs = h.apply(LISTENER_TYPE, [
    http('quiet', [rbac({ track_per_rule_stats: false }), jwt({})]),
    http('loud', [rbac({ track_per_rule_stats: true }), jwt({ async_fetch: { fast_listener: true }, retry_policy: { num_retries: 3, retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }] } })]),
  ]);
  assert.deepEqual(errs, []);
  const warnings = [...h.rt.warnings.values()].flat();
  const text = warnings.join('\n');
  assert.doesNotMatch(text, /quiet/, text);
  assert.match(text, /loud.*track_per_rule_stats: per-rule counters are not supported/);
  assert.match(text, /loud.*remote_jwks\.retry_policy\.retry_host_predicate: not supported for JWKS fetches/);
  assert.equal(warnings.length, 2, text);
});
