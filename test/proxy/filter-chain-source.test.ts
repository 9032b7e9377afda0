// Filter chain matching on direct_source_prefix_ranges and source_type (accepted and ignored
// before), in Envoy's order: after application protocols, direct source IP, then source type,
// then source IP and port; a chain that matches a criterion specifically wins over chains that
// leave it unset. Real connections from 127.0.0.1, and selectFilterChain for an external peer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addr, configure, request, routeConfig, startTestRuntime, HCM, ROUTER } from './harness.ts';
import { selectFilterChain } from '../../src/proxy/listener/filter-chain-match.ts';

function chain(name: string, match: Record<string, unknown>) {
  const direct = routeConfig(name, [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: name } } }]);
  return { name, filter_chain_match: match, filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: name, route_config: direct, http_filters: [ROUTER] } }] };
}

const cidr = (address_prefix: string, prefix_len: number) => ({ address_prefix, prefix_len });

test('source_type and direct_source_prefix_ranges select filter chains as in Envoy', async (t) => {
  const h = await startTestRuntime(t);
  const listener = (name: string, chains: ReturnType<typeof chain>[]) => ({ name, address: addr(0), filter_chains: chains });
  await configure(h, {
    listeners: [
      listener('external', [chain('external', { source_type: 'EXTERNAL' }), chain('any', {})]),
      listener('local', [chain('local', { source_type: 'SAME_IP_OR_LOOPBACK' }), chain('any', {})]),
      listener('direct', [chain('ten', { direct_source_prefix_ranges: [cidr('10.0.0.0', 8)] }), chain('loop', { direct_source_prefix_ranges: [cidr('127.0.0.0', 8)] }), chain('any', {})]),
      listener('order', [chain('by-direct-source', { direct_source_prefix_ranges: [cidr('127.0.0.1', 32)] }), chain('by-type', { source_type: 'SAME_IP_OR_LOOPBACK' })]),
    ],
  });
  const body = async (l: string) => (await request(h.port(l))).body;
  assert.equal(await body('external'), 'any', 'a loopback peer is not EXTERNAL: the chain without source_type takes it');
  assert.equal(await body('local'), 'local');
  assert.equal(await body('direct'), 'loop');
  assert.equal(await body('order'), 'by-direct-source', 'direct source IP is matched before source type');

  const facts = { destinationPort: 80, destinationIp: '10.0.0.5', transportProtocol: 'raw_buffer', applicationProtocols: [], sourcePort: 4000, directSourceIp: '192.0.2.7', directSourcePort: 4000, acceptedAt: 0 };
  const ext = h.rt.listeners.get('external')!.config;
  assert.equal(selectFilterChain(ext, { ...facts, sourceIp: '192.0.2.7' })?.name, 'external');
  assert.equal(selectFilterChain(ext, { ...facts, sourceIp: '10.0.0.5' })?.name, 'any', 'the same IP as the destination is local');
  const local = h.rt.listeners.get('local')!.config;
  assert.equal(selectFilterChain(local, { ...facts, sourceIp: '::ffff:10.0.0.5' })?.name, 'local');
  assert.equal(selectFilterChain(local, { ...facts, sourceIp: '192.0.2.7' })?.name, 'any');
});
