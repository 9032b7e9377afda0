// The proxy's /logging levels (src/proxy/admin/logging.ts) over real pino loggers: one logger per
// component, set all at once or one by one, without one logger's change moving the others.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createLogger } from '../../src/core/log.ts';
import { LogLevels, LogLevelError } from '../../src/proxy/admin/logging.ts';

function setup() {
  const root = createLogger({ level: 'info' });
  const levels = new LogLevels(root);
  const xds = root.child({ component: 'xds-client' });
  const identity = root.child({ component: 'identity' });
  return { root, levels, xds, identity };
}

it('lists the root and each component with Envoy level names', () => {
  const { levels } = setup();
  assert.equal(levels.render(), 'active loggers:\n  identity: info\n  proxy: info\n  xds-client: info\n');
});

it('one logger changes alone, the root included; children made later take their logger level', () => {
  const { root, levels, xds, identity } = setup();
  levels.apply(new URLSearchParams('xds-client=debug'));
  assert.equal(xds.level, 'debug');
  assert.equal(identity.level, 'info');
  levels.apply(new URLSearchParams('proxy=critical'));
  assert.equal(root.level, 'fatal');
  assert.equal(identity.level, 'info', 'a child that followed the root keeps its level');
  assert.equal(root.child({ component: 'xds-client' }).child({ stream: 1 }).level, 'debug');
  assert.deepEqual(levels.list(), [['identity', 'info'], ['proxy', 'critical'], ['xds-client', 'debug']]);
});

it('level= sets every logger; paths= several; a bad name or level changes nothing', () => {
  const { levels, xds, identity } = setup();
  levels.apply(new URLSearchParams('paths=xds-client:trace,identity:warning'));
  assert.deepEqual([xds.level, identity.level], ['trace', 'warn']);
  levels.apply(new URLSearchParams('level=off'));
  assert.deepEqual(levels.list().map(([, l]) => l), ['off', 'off', 'off']);
  assert.throws(() => levels.apply(new URLSearchParams('level=info&nope=debug')), (e) => e instanceof LogLevelError && /unknown logger "nope"/.test(e.message));
  assert.throws(() => levels.apply(new URLSearchParams('identity=loud')), (e) => e instanceof LogLevelError && /unknown level "loud"/.test(e.message));
  assert.deepEqual(levels.list().map(([, l]) => l), ['off', 'off', 'off']);
});
