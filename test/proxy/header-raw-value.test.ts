// HeaderValue.raw_value (bytes, base64 in JSON) in header mutations: the header gets those bytes,
// as with value (substitutions included); setting both value and raw_value is an error, as in Envoy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { compileRouteConfig } from '../../src/proxy/routing/route-config.ts';

const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');

test('raw_value sets request and response headers from bytes', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const route = {
    match: { prefix: '/' },
    route: { cluster: 'up' },
    request_headers_to_add: [{ header: { key: 'x-raw', raw_value: b64('caf\u00e9 %REQ(x-in)%') } }],
    response_headers_to_add: [{ header: { key: 'x-raw-out', raw_value: b64('bytes') }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
  };
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [route]))] });
  const r = await request(h.port('l'), { headers: { 'x-in': 'sub' } });
  assert.equal(r.status, 200);
  assert.equal(Buffer.from(up.requests[0].headers['x-raw'] as string, 'latin1').toString('latin1'), 'caf\u00e9 sub');
  assert.equal(r.headers['x-raw-out'], 'bytes');
});

test('value and raw_value together are an error', () => {
  const issues = new Issues();
  compileRouteConfig(routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' }, request_headers_to_add: [{ header: { key: 'x', value: 'a', raw_value: b64('b') } }] }]), 'r', issues);
  assert.deepEqual(issues.errors, ["r.virtual_hosts[0].routes[0].request_headers_to_add[0].header: only one of 'value' or 'raw_value' can be set"]);
});
