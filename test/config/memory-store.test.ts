import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../../src/api/index.ts';
import type { ConfigEvent } from '../../src/config/index.ts';
import { MemoryConfigStore } from '../../src/config/index.ts';

const vs = (name: string, host: string, ns = 'default'): Resource => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: ns },
  spec: { hosts: [host], http: [{ route: [{ destination: { host } }] }] },
});

test('apply emits add then update with increasing versions, and nothing for an unchanged object', () => {
  const store = new MemoryConfigStore();
  const batches: (readonly ConfigEvent[])[] = [];
  store.onChange((b) => batches.push(b));
  const [add] = store.apply([vs('a', 'reviews')]);
  assert.equal(add.type, 'add');
  assert.equal(add.version, 1);
  assert.equal(store.get('VirtualService', 'default', 'a')?.metadata.resourceVersion, '1');
  assert.deepEqual(store.apply([vs('a', 'reviews')]), [], 'same content: no event');
  const [upd] = store.apply([vs('a', 'ratings')]);
  assert.equal(upd.type, 'update');
  assert.equal(upd.version, 2);
  assert.equal((upd.previous?.spec as { hosts: string[] }).hosts[0], 'reviews');
  assert.equal(batches.length, 2);
  assert.equal(store.version, 2);
});

test('objects handed out are frozen copies: callers cannot change the store', () => {
  const store = new MemoryConfigStore();
  const input = vs('a', 'reviews');
  store.apply([input]);
  (input.spec as { hosts: string[] }).hosts[0] = 'changed';
  const stored = store.get('VirtualService', 'default', 'a')!;
  assert.equal((stored.spec as { hosts: string[] }).hosts[0], 'reviews');
  assert.throws(() => ((stored.spec as { hosts: string[] }).hosts[0] = 'x'));
});

test('delete and replaceAll emit one batch with deletes, adds and updates', () => {
  const store = new MemoryConfigStore();
  store.apply([vs('a', 'reviews'), vs('b', 'ratings'), vs('c', 'details', 'other')]);
  assert.equal(store.list('VirtualService', 'default').length, 2);
  const del = store.delete('VirtualService', 'default', 'b');
  assert.equal(del?.type, 'delete');
  assert.equal(store.delete('VirtualService', 'default', 'b'), undefined);
  let batch: readonly ConfigEvent[] = [];
  store.onChange((b) => (batch = b));
  store.replaceAll([vs('a', 'reviews2'), vs('d', 'productpage')]);
  assert.deepEqual(batch.map((e) => `${e.type}:${e.resource.metadata.name}`).sort(), ['add:d', 'delete:c', 'update:a']);
  const versions = batch.map((e) => e.version);
  assert.deepEqual(versions, [...versions].sort((x, y) => x - y));
  assert.ok(versions.every((v, i) => i === 0 || v > versions[i - 1]), 'strictly increasing');
  assert.deepEqual(store.list().map((r) => r.metadata.name).sort(), ['a', 'd']);
});

test('a throwing handler does not stop the others', () => {
  const store = new MemoryConfigStore();
  let seen = 0;
  store.onChange(() => {
    throw new Error('boom');
  });
  const off = store.onChange(() => seen++);
  store.apply([vs('a', 'reviews')]);
  off();
  store.apply([vs('b', 'reviews')]);
  assert.equal(seen, 1);
});

test('creationTimestamp is stamped when an object is first stored, shared by a batch, kept across updates', async () => {
  const store = new MemoryConfigStore();
  store.apply([vs('a', 'reviews'), vs('b', 'ratings')]);
  const first = store.get('VirtualService', 'default', 'a')!.metadata.creationTimestamp;
  assert.ok(first && !Number.isNaN(Date.parse(first)), `an RFC 3339 time: ${first}`);
  assert.equal(store.get('VirtualService', 'default', 'b')!.metadata.creationTimestamp, first, 'one instant per batch: ties fall to the name');
  const tick = Date.now();
  while (Date.now() === tick) await new Promise((r) => setTimeout(r, 1));
  store.apply([vs('c', 'details'), vs('a', 'productpage')]);
  assert.equal(store.get('VirtualService', 'default', 'a')!.metadata.creationTimestamp, first, 'an update keeps the age');
  assert.ok(store.get('VirtualService', 'default', 'c')!.metadata.creationTimestamp! > first, 'applied later: younger');
  store.replaceAll([{ ...vs('a', 'productpage'), source: { file: 'moved.yaml', line: 3, column: 1 } }, vs('c', 'details')]);
  assert.equal(store.get('VirtualService', 'default', 'a')!.metadata.creationTimestamp, first, 'read again from another line: same age');
  const written = '2024-01-31T11:00:00.000Z';
  const [event] = store.apply([{ ...vs('a', 'productpage'), metadata: { name: 'a', namespace: 'default', creationTimestamp: written } }]);
  assert.equal(event?.type, 'update', 'a written timestamp changes precedence: an update');
  assert.equal(store.get('VirtualService', 'default', 'a')!.metadata.creationTimestamp, written);
});
