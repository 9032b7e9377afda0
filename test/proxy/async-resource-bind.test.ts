import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { shareAsyncResourceAccessors } from '../../src/proxy/upstream/async-resource-bind.ts';

shareAsyncResourceAccessors();
process.noDeprecation = true; // the asyncResource reads below warn (DEP0172), as with Node's own bind

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

test('bound functions share their asyncResource accessor', () => {
  const r = new AsyncResource('test');
  const get = (f: object) => Object.getOwnPropertyDescriptor(f, 'asyncResource')?.get;
  assert.ok(get(r.bind(() => 1)));
  assert.equal(get(r.bind(() => 1)), get(new AsyncResource('other').bind(() => 2)));
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
