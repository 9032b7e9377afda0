import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TlsSessionCache } from './tls-session-cache.ts';

const s = (n: number): Buffer => Buffer.from([n]);

test('offers the most recent fresh session, then the most recent offered one; per host', () => {
  const c = new TlsSessionCache(3);
  assert.equal(c.offer('a'), undefined);
  for (const n of [1, 2, 3]) c.add('a', s(n));
  c.add('b', s(9));
  assert.deepEqual([c.offer('a'), c.offer('a'), c.offer('a')], [s(3), s(2), s(1)]);
  assert.deepEqual(c.offer('a'), s(3), 'no fresh one left: the most recent again');
  assert.deepEqual(c.offer('b'), s(9));
  c.clear();
  assert.equal(c.offer('a'), undefined);
});

test('past max_session_keys an offered session is dropped before a fresh one, else the oldest', () => {
  const c = new TlsSessionCache(2);
  c.add('a', s(1));
  c.add('a', s(2));
  assert.deepEqual(c.offer('a'), s(2));
  c.add('a', s(3)); // drops 2 (offered), keeps 1 (fresh)
  assert.deepEqual([c.offer('a'), c.offer('a'), c.offer('a')], [s(3), s(1), s(3)]);
  const d = new TlsSessionCache(2);
  for (const n of [1, 2, 3]) d.add('a', s(n)); // all fresh: drops 1
  assert.deepEqual([d.offer('a'), d.offer('a'), d.offer('a')], [s(3), s(2), s(3)]);
});
