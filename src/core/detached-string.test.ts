// detachedString keeps only the string's own characters: 2000 ids kept, each cut from an 8 KB
// string that is then dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { heapBytesPerItem, moduleUrl } from '../../test/helpers/heap-per-item.ts';
import { detachedString } from './detached-string.ts';

function bytesPerKeptId(detach: boolean): number {
  return heapBytesPerItem(
    `import { randomBytes } from 'node:crypto';
     import { detachedString } from ${moduleUrl(path.join(import.meta.dirname, 'detached-string.ts'))};`,
    `const kept = [];
     for (let i = 0; i < 2000; i++) {
       const pool = randomBytes(4096).toString('hex');
       const id = pool.slice(100, 132) + (i % 2 ? pool.slice(0, 13) : '');
       kept.push(${detach ? 'detachedString(id)' : 'id'});
     }
     return { kept, items: kept.length };`,
  );
}

test('a detached slice or concatenation keeps its own characters only', () => {
  const perId = bytesPerKeptId(true);
  assert.ok(perId < 512, `${perId} bytes per kept id`);
});

test('a plain slice or concatenation keeps the string it came from (what detachedString prevents)', () => {
  const perId = bytesPerKeptId(false);
  // Each source is an 8 KB string: keeping it reads above 8 KB, a copy below 0.5 KB.
  assert.ok(perId > 4096, `${perId} bytes per kept id: V8 no longer makes such strings views of their source`);
});

test('the copy reads the same', () => {
  const source = 'GET /a-path-long-enough HTTP/1.1\r\nuser-agent: curl/8.0 and more\r\n';
  for (const s of ['', 'short', source.slice(4, 23), source.slice(34, 64) + source.slice(0, 3), 'ünïcode ☃ string of length']) assert.equal(detachedString(s), s);
});
