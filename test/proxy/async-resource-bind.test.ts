import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { lightenAsyncResourceBind } from '../../src/proxy/upstream/async-resource-bind.ts';

lightenAsyncResourceBind();

function minorGc(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (o: { type: 'minor'; execution: 'sync' }) => void;
  v8.setFlagsFromString('--no-expose-gc');
  gc({ type: 'minor', execution: 'sync' });
}

const oldSpaceUsed = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;

test('what a bound function holds dies in the young generation', () => {
  minorGc();
  minorGc();
  const before = oldSpaceUsed();
  for (let i = 0; i < 40; i++) {
    const held = new Array(12_500).fill(i); // ~100 KB
    new AsyncResource('test').bind(() => held.length)();
  }
  // Two scavenges: a survivor of both is promoted to the old generation.
  minorGc();
  minorGc();
  const grown = oldSpaceUsed() - before;
  assert.ok(grown < 1_000_000, `old space grew ${grown} bytes (40 bound functions holding ~100 KB each)`);
});

test('a bound function has asyncResource as a plain property, not an accessor of its own', () => {
  const r = new AsyncResource('test');
  const descriptor = Object.getOwnPropertyDescriptor(r.bind(() => 1), 'asyncResource');
  assert.equal(descriptor?.value, r);
  assert.equal(descriptor?.get, undefined);
});

test('a bound function keeps the length of the function it binds, with or without thisArg', () => {
  const r = new AsyncResource('test');
  const bindWithThis = r.bind.bind(r) as (fn: (...a: number[]) => unknown, thisArg: unknown) => (...a: number[]) => unknown;
  const fns = [() => 0, (a: number) => a, (a: number, b: number) => a + b, (a: number, b: number, c: number) => a + b + c, (a: number, b: number, c: number, d: number, e: number) => a + b + c + d + e];
  for (const fn of fns) {
    assert.equal(r.bind(fn).length, fn.length);
    assert.equal(bindWithThis(fn, {}).length, fn.length);
    assert.equal(r.bind(fn)(1, 2, 3, 4, 5), fn(1, 2, 3, 4, 5), 'every argument passed, whatever the declared length');
  }
});

test('a bound function runs in its resource, with its this, arguments, result and length', () => {
  const als = new AsyncLocalStorage<string>();
  const r = als.run('store', () => new AsyncResource('test'));
  type Bound = ((this: unknown, a: number, b: number) => object) & { asyncResource: AsyncResource };
  const bound = r.bind(function (this: unknown, a: number, b: number) {
    return { self: this, sum: a + b, id: executionAsyncId(), store: als.getStore() };
  }) as Bound;
  assert.equal(bound.length, 2);
  const self = {};
  assert.deepEqual(bound.call(self, 1, 2), { self, sum: 3, id: r.asyncId(), store: 'store' });
  // Node's bind takes a thisArg too; its typings omit it.
  const bindWithThis = r.bind.bind(r) as (fn: () => unknown, thisArg: unknown) => () => unknown;
  const withThis = bindWithThis(function (this: unknown) {
    return this;
  }, self);
  assert.equal(withThis.call({}), self);
  assert.equal(bound.asyncResource, r);
  const other = new AsyncResource('other');
  bound.asyncResource = other;
  assert.equal(bound.asyncResource, other);
  assert.throws(() => r.bind(42 as unknown as () => void), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('node:http2 client requests still work', async () => {
  const server = http2.createServer((req, res) => res.end(`hello ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const bodies = await Promise.all(
      ['/a', '/b'].map(
        (path) =>
          new Promise<string>((resolve, reject) => {
            const stream = session.request({ ':path': path });
            let body = '';
            stream.setEncoding('utf8');
            stream.on('data', (c: string) => (body += c));
            stream.on('end', () => resolve(body));
            stream.on('error', reject);
          }),
      ),
    );
    assert.deepEqual(bodies, ['hello /a', 'hello /b']);
  } finally {
    session.close();
    await new Promise((r) => server.close(r));
  }
});
