// Streams asking for the same names share one list; a push's name filter narrows each list once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { internNames, nameFilter } from '../../src/xds/server/watched-names.ts';

test('equal name lists are interned to one array; different order or content is another list', () => {
  const a = internNames(['outbound|80||a.ns.svc.cluster.local', 'outbound|80||b.ns.svc.cluster.local']);
  assert.equal(internNames(['outbound|80||a.ns.svc.cluster.local', 'outbound|80||b.ns.svc.cluster.local']), a);
  assert.notEqual(internNames(['outbound|80||b.ns.svc.cluster.local', 'outbound|80||a.ns.svc.cluster.local']), a);
  // A name containing the separator of another list's names is not confused with it.
  const joined = internNames(['x","y', 'z']);
  assert.notEqual(internNames(['x', 'y","z']), joined);
});

test('a name filter tests each name once and narrows each list once', () => {
  let calls = 0;
  const f = nameFilter((n) => {
    calls++;
    return n.startsWith('a');
  });
  const list = internNames(['a1', 'b1', 'a2']);
  assert.deepEqual(f.list(list), ['a1', 'a2']);
  assert.equal(f.list(list), f.list(list));
  assert.equal(calls, 3);
  assert.equal(f('a1'), true);
  assert.equal(f('b9'), false);
  assert.equal(calls, 4);
});
