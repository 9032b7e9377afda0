// The example rate limit service's reading of envoyproxy/ratelimit's configuration and its counting
// (examples/ratelimit-service/limits.ts): value-specific before any-value keys, nested descriptors,
// a counter per actual descriptor value, fixed windows, unlimited, shadow_mode, config errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters, readConfig } from '../../examples/ratelimit-service/limits.ts';

const CONFIG = `
domain: edge
descriptors:
  - key: PATH
    value: /productpage
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: PATH
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: user
    value: admin
    rate_limit: { unlimited: true }
  - key: user
    rate_limit: { unit: hour, requests_per_unit: 1, name: per-user }
    shadow_mode: true
  - key: client
    descriptors:
      - key: method
        value: POST
        rate_limit: { unit: second, requests_per_unit: 1 }
---
domain: other
descriptors:
  - key: PATH
    rate_limit: { unit: day, requests_per_unit: 5 }
`;

const T0 = Date.UTC(2026, 0, 1, 12, 0, 10);
const path = (p: string) => [{ key: 'PATH', value: p }];

test('a value-specific limit wins over the any-value one; every value counts on its own, in fixed windows', () => {
  const c = new Counters(readConfig(CONFIG, 'config.yaml'));
  assert.deepEqual([c.hit('edge', path('/productpage'), 1, T0).code, c.hit('edge', path('/productpage'), 1, T0).code], ['OK', 'OVER_LIMIT']);
  const a = [1, 2, 3].map(() => c.hit('edge', path('/a'), 1, T0));
  assert.deepEqual(a.map((v) => v.code), ['OK', 'OK', 'OVER_LIMIT']);
  assert.deepEqual(a.map((v) => v.remaining), [1, 0, 0]);
  assert.equal(a[0].resetSeconds, 50, 'the minute window ends 50 s after 12:00:10');
  assert.equal(a[0].limit?.unit, 'MINUTE');
  assert.equal(c.hit('edge', path('/b'), 1, T0).code, 'OK', '/b has its own counter');
  assert.equal(c.hit('edge', path('/a'), 1, T0 + 50_000).code, 'OK', 'a new minute, a new window');
  assert.equal(c.hit('other', path('/a'), 1, T0).remaining, 4, 'domains count apart');
  assert.equal(c.hit('edge', path('/a'), 5, T0 + 60_000).code, 'OVER_LIMIT', 'hits_addend counts that many');
});

test('nested descriptors, unlimited, shadow_mode, and descriptors the configuration does not know', () => {
  const c = new Counters(readConfig(CONFIG, 'config.yaml'));
  const post = [{ key: 'client', value: 'x' }, { key: 'method', value: 'POST' }];
  assert.deepEqual([c.hit('edge', post, 1, T0).code, c.hit('edge', post, 1, T0).code], ['OK', 'OVER_LIMIT']);
  assert.equal(c.hit('edge', [{ key: 'client', value: 'x' }], 1, T0).limit, undefined, 'the client level has no limit of its own');
  assert.equal(c.hit('edge', [{ key: 'client', value: 'x' }, { key: 'method', value: 'GET' }], 1, T0).limit, undefined);
  for (let i = 0; i < 3; i++) assert.equal(c.hit('edge', [{ key: 'user', value: 'admin' }], 1, T0).code, 'OK');
  const shadow = [1, 2].map(() => c.hit('edge', [{ key: 'user', value: 'bob' }], 1, T0));
  assert.deepEqual(shadow.map((v) => v.code), ['OK', 'OK'], 'shadow_mode: over the limit, still OK');
  assert.equal(shadow[1].limit?.name, 'per-user');
  assert.equal(c.hit('edge', [{ key: 'nope', value: '1' }], 1, T0).limit, undefined);
  assert.equal(c.hit('missing', path('/a'), 1, T0).code, 'OK', 'an unknown domain limits nothing');
});

test('configuration errors name the file and the field', () => {
  assert.throws(() => readConfig('domain: d\ndescriptors: [{ key: a, rate_limit: { unit: fortnight, requests_per_unit: 1 } }]', 'c.yaml'), /c\.yaml: d\.descriptors\[0\]\.rate_limit\.unit: "fortnight"/);
  assert.throws(() => readConfig('domain: d\ndescriptors: [{ key: a }, { key: a }]', 'c.yaml'), /descriptors\[1\]: duplicate descriptor key "a"/);
  assert.throws(() => readConfig('descriptors: []', 'c.yaml'), /c\.yaml: domain: required/);
  assert.throws(() => readConfig('domain: d\ndescriptors: [{ value: x }]', 'c.yaml'), /descriptors\[0\]\.key: required/);
});

test("the task's ratelimit-config ConfigMap is read through its .yaml entries (the example's own file)", async () => {
  const fs = await import('node:fs/promises');
  const file = new URL('../../examples/ratelimit-service/config/ratelimit-config.yaml', import.meta.url);
  const c = new Counters(readConfig(await fs.readFile(file, 'utf8'), 'ratelimit-config.yaml'));
  assert.deepEqual([c.hit('ratelimit', path('/productpage'), 1, T0).code, c.hit('ratelimit', path('/productpage'), 1, T0).code], ['OK', 'OVER_LIMIT']);
  assert.equal(c.hit('ratelimit', path('/api/v1/products'), 1, T0).remaining, 99, 'any other path: 100 a minute');
});
