// Listener fields that used to be accepted without effect: stat_prefix names the listener's stats
// (listener.<stat_prefix>. instead of listener.<address>_<port>.), and drain_type MODIFY_ONLY, which
// rig does not distinguish, is warned about; fields without an effect in one process stay quiet.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, LISTENER_TYPE } from './harness.ts';

test('stat_prefix names listener stats; drain_type MODIFY_ONLY warns; reuse-port and balancing stay quiet', async (t) => {
  const h = await startTestRuntime(t);
  const direct = routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]);
  await configure(h, { listeners: [httpListener('named', direct, {}, { stat_prefix: 'public_http', enable_reuse_port: true, connection_balance_config: { exact_balance: {} } }), httpListener('plain', direct)] });
  await request(h.port('named'));
  await request(h.port('plain'));
  const value = (name: string) => h.rt.stats.all().find((s) => s.name === name)?.value;
  assert.equal(value('listener.public_http.downstream_cx_total'), 1);
  assert.equal(value('listener.127.0.0.1_0.downstream_cx_total'), 1, 'without stat_prefix: the configured address');
  assert.deepEqual([...h.rt.warnings.values()].flat(), []);

  assert.deepEqual(h.apply(LISTENER_TYPE, [httpListener('named', direct, {}, { drain_type: 'MODIFY_ONLY' })]), []);
  const warnings = [...h.rt.warnings.values()].flat();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^listener "named": drain_type: MODIFY_ONLY is not supported/);
});
