// The filter lists EnvoyFilter validation checks against are rig proxy's registries, and
// TypedStructs of known types are unwrapped.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setupExtensions } from '../proxy/extensions.ts';
import { registeredHttpFilterTypeUrls, registeredHttpFilters } from '../proxy/filters/registry.ts';
import { registeredNetworkFilters } from '../proxy/network/network-filter.ts';
import { PROXY_HTTP_FILTERS, PROXY_NETWORK_FILTERS, normalizePatchValue, unknownFilterReason } from './patch-value.ts';
import { LOCAL_RATELIMIT_TYPE, ROUTER_TYPE } from './type-urls.ts';

test('PROXY_HTTP_FILTERS / PROXY_NETWORK_FILTERS are what rig proxy registers (plus the router, which the HCM handles itself)', () => {
  setupExtensions();
  assert.deepEqual([...PROXY_HTTP_FILTERS.names], [...registeredHttpFilters(), 'envoy.filters.http.router'].sort());
  assert.deepEqual([...PROXY_HTTP_FILTERS.typeUrls], [...registeredHttpFilterTypeUrls(), ROUTER_TYPE].sort());
  assert.deepEqual({ names: [...PROXY_NETWORK_FILTERS.names], typeUrls: [...PROXY_NETWORK_FILTERS.typeUrls] }, registeredNetworkFilters());
});

test('a TypedStruct of a known type becomes that type; camelCase becomes snake_case; unknown filters are named', () => {
  const r = normalizePatchValue('envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', {
    name: 'envoy.filters.http.local_ratelimit',
    typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: LOCAL_RATELIMIT_TYPE, value: { statPrefix: 'rl', token_bucket: { max_tokens: 1, fill_interval: '60s' } } },
  });
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.value, { name: 'envoy.filters.http.local_ratelimit', typed_config: { '@type': LOCAL_RATELIMIT_TYPE, stat_prefix: 'rl', token_bucket: { max_tokens: 1, fill_interval: '60s' } } });
  assert.equal(unknownFilterReason('HTTP', r.value!), undefined);
  assert.match(unknownFilterReason('HTTP', { name: 'envoy.filters.http.oauth2', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2' } })!, /no HTTP filter .*oauth2.*NACK/);
  assert.equal(unknownFilterReason('HTTP', { name: 'envoy.filters.http.oauth2', is_optional: true }), undefined);
  assert.equal(unknownFilterReason('HTTP', { name: 'envoy.filters.http.lua', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua' } }), undefined);
});
