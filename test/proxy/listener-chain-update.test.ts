// Envoy's filter chain only update: when an LDS update changes nothing but filter chains, the
// connections of a chain equal to one before stay open; those of a changed or removed chain drain;
// any other change to the listener drains every connection.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { HCM, LISTENER_TYPE, ROUTER, addr, configure, request, routeConfig, startTestRuntime, startUpstream } from './harness.ts';

const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' } }]);
const chain = (name: string, server: string, match?: EnvoyJson): EnvoyJson => ({
  name,
  ...(match ? { filter_chain_match: match } : {}),
  filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: route, http_filters: [ROUTER], server_name: server } }],
});
const listener = (chains: EnvoyJson[], extra: EnvoyJson = {}): EnvoyJson => ({ name: 'l', address: addr(0), filter_chains: chains, ...extra });
// Plain-text connections take chain "a"; chain "b" wants an SNI they do not have.
const inspector = { listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }] };
const b = (server: string) => chain('b', server, { server_names: ['b.example'], transport_protocol: 'tls' });

test('a filter chain only update keeps the connections of unchanged chains and drains the changed ones', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [{ name: 'c', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: addr(up.port) } }] }] } }],
    listeners: [listener([chain('a', 'one'), b('b1')], inspector)],
  });
  const port = h.port('l');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const peer = () => h.streams.at(-1)!.downstreamRemoteAddress;
  const closedByProxy = async () => {
    for (let i = 0; i < 200 && Object.keys(agent.freeSockets).length > 0; i++) await new Promise((r) => setTimeout(r, 5));
  };

  assert.equal((await request(port, { agent })).headers.server, 'one');
  const first = peer();

  assert.deepEqual(h.apply(LISTENER_TYPE, [listener([chain('a', 'one'), b('b2')], inspector)]), []);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await request(port, { agent })).headers.server, 'one');
  assert.equal(peer(), first, 'another chain changed: this connection stays open');

  assert.deepEqual(h.apply(LISTENER_TYPE, [listener([chain('a', 'two'), b('b2')], inspector)]), []);
  await closedByProxy();
  assert.equal((await request(port, { agent })).headers.server, 'two', 'its own chain changed: drained, a new connection takes the new chain');
  const second = peer();
  assert.notEqual(second, first);

  // The same chains, a listener field changed: the whole listener drains.
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener([chain('a', 'two'), b('b2')], { ...inspector, listener_filters_timeout: '5s' })]), []);
  await closedByProxy();
  assert.equal((await request(port, { agent })).headers.server, 'two');
  assert.notEqual(peer(), second, 'not a filter chain only update: every connection drains');
});
