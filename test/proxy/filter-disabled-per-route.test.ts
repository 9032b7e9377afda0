// HttpFilter.disabled and route.v3.FilterConfig as Envoy's route-based filter chain: a filter the
// connection manager marks disabled runs only where a route or virtual host typed_per_filter_config
// names it (an empty FilterConfig config, the filter's own per-route config, or an is_optional
// FilterConfig of a type no filter takes per route), and FilterConfig.disabled turns any filter off there, the
// route winning over its virtual host. Real requests through the proxy with the fault filter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addr, configure, HCM, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const FILTER_CONFIG = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
const FAULT = 'envoy.filters.http.fault';
const abort = (status: number) => ({ '@type': FAULT_TYPE, abort: { http_status: status, percentage: { numerator: 100, denominator: 'HUNDRED' } } });
const enable = { [FAULT]: { '@type': FILTER_CONFIG, config: {} } };
const turnOff = { [FAULT]: { '@type': FILTER_CONFIG, disabled: true } };

function listener(name: string, disabled: boolean, virtualHosts: unknown[]): Record<string, unknown> {
  const hcm = { '@type': HCM, stat_prefix: name, route_config: { name: 'r', virtual_hosts: virtualHosts }, http_filters: [{ name: FAULT, disabled, typed_config: abort(503) }, ROUTER] };
  return { name, address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] };
}

const route = (prefix: string, perFilter?: Record<string, unknown>) => ({ match: { prefix }, route: { cluster: 'app' }, ...(perFilter ? { typed_per_filter_config: perFilter } : {}) });

test('a disabled HTTP filter runs only where a route or virtual host enables it; FilterConfig.disabled turns one off', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  // A type no filter takes as per-route config (the router's own).
  const unknownOptional = { [FAULT]: { '@type': FILTER_CONFIG, is_optional: true, config: ROUTER.typed_config } };
  await configure(h, {
    clusters: [staticCluster('app', [app.port])],
    listeners: [
      listener('off', true, [
        { name: 'plain', domains: ['plain'], routes: [route('/enabled', enable), route('/own', { [FAULT]: abort(429) }), route('/optional', unknownOptional), route('/')] },
        { name: 'vhost', domains: ['vhost'], typed_per_filter_config: enable, routes: [route('/off', turnOff), route('/')] },
      ]),
      listener('on', false, [{ name: 'all', domains: ['*'], routes: [route('/off', turnOff), route('/enabled', enable), route('/')] }]),
    ],
  });
  const status = async (port: number, host: string, path: string) => (await request(port, { path, headers: { host } })).status;
  const off = h.port('off');
  assert.equal(await status(off, 'plain', '/'), 200, 'disabled by default: the fault never runs');
  assert.equal(await status(off, 'plain', '/enabled'), 503, 'an empty FilterConfig runs it with its connection manager config');
  assert.equal(await status(off, 'plain', '/own'), 429, 'its own per-route config enables it and applies');
  assert.equal(await status(off, 'plain', '/optional'), 503, 'an is_optional FilterConfig of a type without per-route support enables it without a config');
  assert.equal(await status(off, 'vhost', '/'), 503, 'enabled by the virtual host');
  assert.equal(await status(off, 'vhost', '/off'), 200, "the route's FilterConfig.disabled wins over its virtual host");
  const on = h.port('on');
  assert.equal(await status(on, 'x', '/'), 503);
  assert.equal(await status(on, 'x', '/enabled'), 503, 'enabling an enabled filter changes nothing');
  assert.equal(await status(on, 'x', '/off'), 200, 'FilterConfig.disabled turns it off on that route');
  assert.equal(app.requests.length, 3, 'only the 200s reached the app');
  const warnings = [...h.rt.warnings.values()].flat().join('\n');
  assert.match(warnings, /typed_per_filter_config\.envoy\.filters\.http\.fault: no filter supports per-route config type\.googleapis\.com\/envoy\.extensions\.filters\.http\.router\.v3\.Router; the filter runs here without it \(is_optional\)/);
  assert.doesNotMatch(warnings, /disabled/, 'disabled is honoured, not warned about');
});

test('a FilterConfig without config and a disabled router are errors, as in Envoy', async (t) => {
  const h = await startTestRuntime(t);
  const noConfig = listener('no-config', true, [{ name: 'v', domains: ['*'], routes: [route('/', { [FAULT]: { '@type': FILTER_CONFIG, is_optional: true } })] }]);
  const routerOff = { ...listener('router-off', false, []), filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 'x', route_config: routeConfig('r', []), http_filters: [{ ...ROUTER, disabled: true }] } }] }] };
  assert.deepEqual(h.apply('type.googleapis.com/envoy.config.cluster.v3.Cluster', [staticCluster('app', [1])]), []);
  const errs = h.apply(LISTENER_TYPE, [noConfig, routerOff]).join('\n');
  assert.match(errs, /no-config.*typed_per_filter_config\.envoy\.filters\.http\.fault: a FilterConfig needs config \(an empty config: \{\} enables the filter here\) or disabled: true/);
  assert.match(errs, /router-off.*http_filters\[0\]\.disabled: the router \(the terminal filter\) cannot be disabled by default/);
});
