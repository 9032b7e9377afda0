// detachedString keeps only the string's own characters: 2000 ids kept, each cut from an 8 KB
// string that is then dropped, and the heap measured after garbage collection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { settledHeap } from '../../test/helpers/leak-baseline.ts';
import { detachedString } from './detached-string.ts';

const IDS = 2000;

async function bytesPerKeptId(keep: (id: string) => string): Promise<number> {
  const before = await settledHeap();
  const kept: string[] = [];
  for (let i = 0; i < IDS; i++) {
    const pool = randomBytes(4096).toString('hex');
    kept.push(keep(pool.slice(100, 132) + (i % 2 ? pool.slice(0, 13) : '')));
  }
  const perId = ((await settledHeap()) - before) / IDS;
  assert.equal(kept.length, IDS);
  return perId;
}

test('a detached slice or concatenation keeps its own characters only', async () => {
  const perId = await bytesPerKeptId(detachedString);
  assert.ok(perId < 512, `${perId} bytes per kept id`);
});

test('a plain slice or concatenation keeps the string it came from (what detachedString prevents)', async () => {
  const perId = await bytesPerKeptId((id) => id);
  // Each source is an 8 KB string: keeping it reads above 8 KB, a copy below 0.5 KB.
  assert.ok(perId > 4096, `${perId} bytes per kept id: V8 no longer makes such strings views of their source`);
});

test('the copy reads the same', () => {
  const source = 'GET /a-path-long-enough HTTP/1.1\r\nuser-agent: curl/8.0 and more\r\n';
  for (const s of ['', 'short', source.slice(4, 23), source.slice(34, 64) + source.slice(0, 3), 'ünïcode ☃ string of length']) assert.equal(detachedString(s), s);
});
