// A listener version out of service whose drained connections are still open stays in use, as
// Envoy's draining listener keeps its route and extension config providers until it is destroyed:
// its RDS and ECDS names stay in routeNamesInUse / extensionNamesInUse (what the xDS client keeps
// subscribed) until its last connection closed, then they go. (listener-rds-warming tests a route
// update reaching a draining connection over ADS.)
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { waitFor } from '../helpers/wait.ts';
import { httpListener, LISTENER_TYPE, ROUTE_TYPE, ROUTER, routeConfig, startTestRuntime } from './harness.ts';

const HTTP_RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const answering = (name: string) => routeConfig(name, [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: name } } }]);
/** An HTTP filter taken over ECDS, serving at once with its default (an allow-all RBAC). */
const ecdsFilter = { name: 'ext', config_discovery: { config_source: { ads: {} }, type_urls: [HTTP_RBAC], default_config: { '@type': HTTP_RBAC, rules: {} }, apply_default_config_without_warming: true } };

for (const how of ['replaced', 'removed'] as const) {
  test(`a version ${how} while a connection of it is open keeps its RDS and ECDS names in use until that connection closed`, async (t) => {
    const h = await startTestRuntime(t);
    assert.deepEqual(h.apply(ROUTE_TYPE, [answering('one'), answering('two')]), []);
    assert.deepEqual(h.apply(LISTENER_TYPE, [httpListener('in', 'one', { http_filters: [ecdsFilter, ROUTER] })]), []);
    await h.rt.settled();
    assert.deepEqual([[...h.rt.routeNamesInUse()], [...h.rt.extensionNamesInUse()]], [['one'], ['ext']]);

    // A request whose head is not all sent: its connection is busy, so the drain leaves it open.
    const c = net.connect(h.port('in'), '127.0.0.1');
    t.after(() => c.destroy());
    c.write('GET / HTTP/1.1\r\nhost: in\r\n');
    await waitFor('the connection accepted', () => (h.rt.stats.gauge('http.in.downstream_cx_active').value === 1 ? true : undefined), { intervalMs: 10 });

    assert.deepEqual(h.apply(LISTENER_TYPE, how === 'replaced' ? [httpListener('in', 'two')] : []), []);
    assert.deepEqual(h.rt.listeners.drainingListeners().map((l) => l.name), ['in']);
    assert.deepEqual([[...h.rt.routeNamesInUse()].sort(), [...h.rt.extensionNamesInUse()]], [how === 'replaced' ? ['one', 'two'] : ['one'], ['ext']], 'the draining version keeps its names');

    c.destroy();
    await waitFor('the draining version gone', () => (h.rt.listeners.drainingListeners().length === 0 ? true : undefined), { intervalMs: 10 });
    assert.deepEqual([[...h.rt.routeNamesInUse()], [...h.rt.extensionNamesInUse()]], [how === 'replaced' ? ['two'] : [], []]);
  });
}
