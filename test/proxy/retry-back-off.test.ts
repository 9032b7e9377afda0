// A route's retry_policy.retry_back_off, refused where Envoy refuses it (RetryBackOff's validate
// rules: base_interval required and > 0, max_interval > 0; RetryPolicyImpl: max_interval not below
// base_interval, sub-millisecond intervals counted as 1 ms), with the field's path in the NACK.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { ROUTE_TYPE, routeConfig, startTestRuntime } from './harness.ts';

const PATH = /r\b.*virtual_hosts\[0\]\.routes\[0\]\.route\.retry_policy\.retry_back_off/;

function routeWith(retry_back_off: EnvoyJson): EnvoyJson {
  return routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app', retry_policy: { retry_on: '5xx', retry_back_off } } }]);
}

test('retry_back_off: NACKed without base_interval, with a base or max of 0s, and with max below base; the field is named', async (t) => {
  const h = await startTestRuntime(t);
  const nack = (bo: EnvoyJson): string => h.apply(ROUTE_TYPE, [routeWith(bo)]).join('\n');

  const noBase = nack({ max_interval: '1s' });
  assert.match(noBase, PATH, noBase);
  assert.match(noBase, /retry_back_off\.base_interval: retry_back_off needs a base_interval/);
  assert.match(nack({}), /retry_back_off\.base_interval: retry_back_off needs a base_interval/);
  assert.match(nack({ base_interval: '0s' }), /retry_back_off\.base_interval: must be greater than 0s/);
  assert.match(nack({ base_interval: '0.1s', max_interval: '0s' }), /retry_back_off\.max_interval: must be greater than 0s/);
  assert.match(nack({ base_interval: '2s', max_interval: '1s' }), /retry_back_off\.max_interval: max_interval \(1000 ms\) must be at least base_interval \(2000 ms\)/);
});

test('retry_back_off: accepted as Envoy accepts it (base alone; sub-millisecond intervals count as 1 ms, so 0.5 ms up to 0.4 ms is no max below base)', async (t) => {
  const h = await startTestRuntime(t);
  assert.deepEqual(h.apply(ROUTE_TYPE, [routeWith({ base_interval: '0.01s' })]), []);
  assert.deepEqual(h.apply(ROUTE_TYPE, [routeWith({ base_interval: '0.0005s', max_interval: '0.0004s' })]), []);
  assert.deepEqual(h.apply(ROUTE_TYPE, [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app', retry_policy: { retry_on: '5xx' } } }])]), [], 'without retry_back_off: 25 ms, up to 250 ms');
});
