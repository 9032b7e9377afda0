import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newRequestId } from './request-id.ts';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('newRequestId: random version 4 UUIDs, all different across refills of the random pool', () => {
  const seen = new Set<string>();
  const variants = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const id = newRequestId();
    assert.match(id, V4);
    seen.add(id);
    variants.add(id[19]);
  }
  assert.equal(seen.size, 2000);
  // The variant's two free bits are random too: all four of 8, 9, a, b show up.
  assert.deepEqual([...variants].sort(), ['8', '9', 'a', 'b']);
});
