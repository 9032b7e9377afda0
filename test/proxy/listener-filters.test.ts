// Listener filters: http_inspector decides filter chains by application protocol; filter_disabled
// (Envoy's ListenerFilterChainMatchPredicate) turns it off per destination port; a
// listener_filters_timeout of 0s means "no limit", as in Envoy.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { HCM, ROUTER, addr, configure, startRuntime, type Harness } from './harness.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';

const HTTP_INSPECTOR = { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector' } };

function answering(body: string): EnvoyJson {
  const route_config = { name: body, virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: body } } }] }] };
  return { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: body, route_config, http_filters: [ROUTER] } }] };
}

function listener(name: string, extra: EnvoyJson, filterDisabled?: EnvoyJson): EnvoyJson {
  return {
    name,
    address: addr(0),
    listener_filters: [{ ...HTTP_INSPECTOR, ...(filterDisabled ? { filter_disabled: filterDisabled } : {}) }],
    filter_chains: [{ name: 'http', filter_chain_match: { application_protocols: ['http/1.1'] }, ...answering('inspected') }],
    default_filter_chain: { name: 'default', ...answering('not inspected') },
    ...extra,
  };
}

/** Writes a request in two parts `pauseMs` apart and returns the response body. */
function request(port: number, pauseMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (c) => (data += c));
    s.on('error', reject);
    s.on('close', () => resolve(data.split('\r\n\r\n').slice(1).join('\r\n\r\n')));
    s.write('GE');
    setTimeout(() => s.write('T / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), pauseMs);
  });
}

async function proxy(t: { after(fn: () => void): void }, listeners: EnvoyJson[]): Promise<Harness> {
  const h = await startRuntime();
  t.after(() => h.close());
  await configure(h, { listeners });
  return h;
}

test('filter_disabled predicates switch the http_inspector off per destination port', async (t) => {
  const h = await proxy(t, [
    listener('always-on', {}),
    listener('any-match', {}, { any_match: true }),
    listener('not-any', {}, { not_match: { any_match: true } }),
    listener('all-ports', {}, { or_match: { rules: [{ destination_port_range: { start: 1, end: 1024 } }, { destination_port_range: { start: 1024, end: 65536 } }] } }),
    listener('no-port', {}, { and_match: { rules: [{ any_match: true }, { destination_port_range: { start: 1, end: 2 } }] } }),
  ]);
  assert.equal(await request(h.port('always-on')), 'inspected');
  assert.equal(await request(h.port('any-match')), 'not inspected');
  assert.equal(await request(h.port('not-any')), 'inspected');
  assert.equal(await request(h.port('all-ports')), 'not inspected');
  assert.equal(await request(h.port('no-port')), 'inspected');
});

test('listener_filters_timeout: 0s waits for the first bytes without limit; a short one falls through to the default chain', async (t) => {
  const h = await proxy(t, [
    listener('unlimited', { listener_filters_timeout: '0s' }),
    listener('short', { listener_filters_timeout: '0.05s', continue_on_listener_filters_timeout: true }),
  ]);
  assert.equal(await request(h.port('unlimited'), 150), 'inspected');
  assert.equal(await request(h.port('short'), 300), 'not inspected');
});

test('an empty destination_port_range is refused with its path', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  await assert.rejects(configure(h, { listeners: [listener('bad', {}, { destination_port_range: { start: 80, end: 80 } })] }), /listener_filters\[0\]\.filter_disabled\.destination_port_range: empty port range \[80, 80\)/);
});
