import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { lightenH2StreamTables, PendingStreams, StreamTable } from '../../src/proxy/http/h2-stream-tables.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (o: { type: 'minor' | 'major'; execution: 'sync' }) => void;
v8.setFlagsFromString('--no-expose-gc');

const oldSpaceUsed = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;

test('streams that pass through an old-generation table die in the young generation', () => {
  const table = new StreamTable<object>();
  table.set(1, {});
  gc({ type: 'minor', execution: 'sync' });
  gc({ type: 'minor', execution: 'sync' }); // the table is in the old generation, as a long-lived session's
  table.delete(1);
  gc({ type: 'major', execution: 'sync' });
  const before = oldSpaceUsed();
  // 2000 streams of ~1 KB with ten open at a time, as node:http2 adds and deletes them. Through a Map
  // whose table is old, ~half of them outlived the scavenges (~1 MB: V8 rehashes it into a new old
  // table every few additions and the obsolete one keeps its entries).
  for (let id = 1; id <= 4000; id += 2) {
    table.set(id, { id, held: new Array(125).fill(id) });
    if (id > 20) table.delete(id - 20);
  }
  for (let id = 3981; id <= 3999; id += 2) table.delete(id);
  assert.equal(table.size, 0);
  gc({ type: 'minor', execution: 'sync' });
  gc({ type: 'minor', execution: 'sync' });
  const grown = oldSpaceUsed() - before;
  assert.ok(grown < 200_000, `old space grew ${grown} bytes`);
});

test('a stream table finds, replaces and deletes colliding ids, and iterates what it holds', () => {
  const table = new StreamTable<string>();
  // 1, 33, 65, 97 share a home slot (16 slots); 3 is the next slot's own.
  for (const id of [1, 33, 65, 3, 97]) table.set(id, `s${id}`);
  assert.equal(table.size, 5);
  assert.equal(table.get(65), 's65');
  table.set(65, 'again');
  assert.equal(table.size, 5);
  assert.equal(table.delete(33), true);
  assert.equal(table.delete(33), false);
  assert.equal(table.get(33), undefined);
  assert.deepEqual([1, 65, 3, 97].map((id) => table.get(id)), ['s1', 'again', 's3', 's97']);
  // node destroys each stream from forEach, which deletes it.
  const seen: number[] = [];
  table.forEach((_, id) => {
    seen.push(id);
    table.delete(id);
  });
  assert.deepEqual(seen.sort((a, b) => a - b), [1, 3, 65, 97]);
  assert.equal(table.size, 0);
  // Growth keeps every entry.
  for (let id = 1; id < 200; id += 2) table.set(id, `s${id}`);
  assert.equal(table.size, 100);
  for (let id = 1; id < 200; id += 2) assert.equal(table.get(id), `s${id}`);
  assert.equal(table.has(201), false);

  const pending = new PendingStreams<object>();
  const a = {};
  const b = {};
  pending.add(a).add(b).add(a);
  assert.equal(pending.size, 2);
  assert.equal(pending.delete(a), true);
  assert.equal(pending.has(a), false);
  const left: object[] = [];
  pending.forEach((s) => left.push(s));
  assert.deepEqual(left, [b]);
});

test('node:http2 sessions with lightened tables serve concurrent requests and destroy open streams', async () => {
  const held: http2.ServerHttp2Stream[] = [];
  const server = http2.createServer();
  server.on('session', (session) => lightenH2StreamTables(session));
  server.on('stream', (stream, headers) => {
    if (headers[':path'] === '/hold') return void held.push(stream);
    stream.respond({ ':status': 200 });
    stream.end(`hello ${headers[':path']}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  lightenH2StreamTables(session);
  const state = Object.getOwnPropertySymbols(session).map((k) => (session as unknown as Record<symbol, { streams?: unknown }>)[k]).find((v) => v?.streams !== undefined);
  assert.ok(state?.streams instanceof StreamTable, "the client session's stream table was replaced");
  const get = (path: string) =>
    new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': path }, { endStream: true });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      stream.on('end', () => resolve(body));
      stream.on('error', reject);
    });
  try {
    const paths = Array.from({ length: 60 }, (_, i) => `/${i}`);
    assert.deepEqual(await Promise.all(paths.map(get)), paths.map((p) => `hello ${p}`));
    // Streams still open when the session is destroyed are destroyed with it (node's forEach).
    const open = [session.request({ ':path': '/hold' }), session.request({ ':path': '/hold' })];
    const closed = open.map((s) => new Promise((r) => s.on('close', r).on('error', () => {})));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(held.length, 2);
    session.destroy();
    await Promise.all(closed);
    assert.ok(open.every((s) => s.destroyed));
  } finally {
    session.destroy();
    await new Promise((r) => server.close(r));
  }
});
