import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { readShared, stopReadingShared } from './shared-read-buffer.ts';

/** Accepted sockets of a server on 127.0.0.1:0 (paused, as the proxy's listeners accept them), and a client for each. */
async function pairs(t: TestContext, n: number): Promise<{ accepted: net.Socket; client: net.Socket }[]> {
  const accepted: net.Socket[] = [];
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => void accepted.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const clients: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const c = net.connect(port, '127.0.0.1');
    await once(c, 'connect');
    clients.push(c);
    while (accepted.length <= i) await new Promise((r) => setImmediate(r));
  }
  t.after(() => {
    for (const s of [...accepted, ...clients]) s.destroy();
    server.close();
  });
  return clients.map((client, i) => ({ accepted: accepted[i], client }));
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(cond(), 'timed out');
};

test('an accepted socket reads into the one shared buffer: every read a view of the same memory, none a new allocation', async (t) => {
  const [a, b] = await pairs(t, 2);
  const seen: { text: string; memory: ArrayBufferLike; offset: number }[] = [];
  const reader = (v: Buffer): boolean => {
    seen.push({ text: v.toString('latin1'), memory: v.buffer, offset: v.byteOffset });
    return true;
  };
  // node 24 has what readShared needs; false here means the proxy silently lost its fast path.
  assert.equal(readShared(a.accepted, reader), true);
  assert.equal(readShared(b.accepted, reader), true);
  a.accepted.resume();
  b.accepted.resume();
  a.client.write('first');
  await until(() => seen.length === 1);
  b.client.write('second, longer');
  await until(() => seen.length === 2);
  a.client.write('third');
  await until(() => seen.length === 3);
  assert.deepEqual(seen.map((s) => s.text), ['first', 'second, longer', 'third']);
  assert.equal(seen[0].memory, seen[1].memory);
  assert.equal(seen[1].memory, seen[2].memory);
  assert.deepEqual(seen.map((s) => s.offset), [seen[0].offset, seen[0].offset, seen[0].offset]);
  // The end of the stream still comes as 'end'.
  const ended = once(a.accepted, 'end');
  a.client.end();
  await ended;
});

test('pause() stops the reads, resume() starts them again; a reader answering false stops them too', async (t) => {
  const [p] = await pairs(t, 1);
  const seen: string[] = [];
  let answer = true;
  assert.equal(
    readShared(p.accepted, (v) => {
      seen.push(v.toString());
      return answer;
    }),
    true,
  );
  p.accepted.resume();
  p.client.write('one');
  await until(() => seen.length === 1);
  p.accepted.pause();
  p.client.write('two');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, ['one']);
  p.accepted.resume();
  await until(() => seen.length === 2);
  answer = false;
  p.client.write('three');
  await until(() => seen.length === 3);
  p.client.write('four');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, ['one', 'two', 'three']);
  answer = true;
  p.accepted.resume();
  await until(() => seen.length === 4);
  assert.equal(seen[3], 'four');
});

test('after stopReadingShared the bytes come as data events, each chunk a copy that later reads do not overwrite', async (t) => {
  const [tunnel, other] = await pairs(t, 2);
  assert.equal(readShared(tunnel.accepted, () => true), true);
  const otherSeen: string[] = [];
  assert.equal(readShared(other.accepted, (v) => otherSeen.push(v.toString()) > 0), true);
  tunnel.accepted.resume();
  other.accepted.resume();
  stopReadingShared(tunnel.accepted);
  // Held unread in the stream while the other socket's reads reuse the buffer.
  tunnel.accepted.pause();
  tunnel.client.write('AAAAAAAAAA');
  await new Promise((r) => setTimeout(r, 30));
  other.client.write('BBBBBBBBBB');
  await until(() => otherSeen.length === 1);
  const got: string[] = [];
  tunnel.accepted.on('data', (c: Buffer) => got.push(c.toString())).resume();
  await until(() => got.join('').length === 10);
  assert.equal(got.join(''), 'AAAAAAAAAA');
});

test('readShared declines a socket with bytes still in its stream, and a TLS socket; both go on with data events', async (t) => {
  const [p] = await pairs(t, 1);
  p.accepted.unshift(Buffer.from('put back'));
  assert.equal(
    readShared(p.accepted, () => true),
    false,
  );
  const got: string[] = [];
  p.accepted.on('data', (c: Buffer) => got.push(c.toString())).resume();
  p.client.write(' and more');
  await until(() => got.join('') === 'put back and more');

  const [q] = await pairs(t, 1);
  const ts = new tls.TLSSocket(q.accepted, { isServer: true });
  assert.equal(
    readShared(ts, () => true),
    false,
  );
});
