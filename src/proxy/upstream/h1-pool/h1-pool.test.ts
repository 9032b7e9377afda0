// The HTTP/1.1 upstream pool against real node:http servers: reuse, limits, request bodies
// (buffered, chunked, streamed with back-pressure), bodiless responses, response back-pressure,
// abort, timeouts, graceful close.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { H1ErrorCode } from './h1-errors.ts';
import { limitGate, poolTo, rawServer, send } from './h1-pool-test-kit.ts';

interface Server {
  port: number;
  /** Distinct connections that carried requests. */
  sockets: Set<net.Socket>;
  server: http.Server;
}

async function serve(t: { after(fn: () => unknown): void }, handler: http.RequestListener, opts: http.ServerOptions = {}): Promise<Server> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer(opts, (req, res) => {
    sockets.add(req.socket);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return { port: (server.address() as AddressInfo).port, sockets, server };
}

function readAll(req: http.IncomingMessage): Promise<string> {
  return new Promise((r) => {
    const c: Buffer[] = [];
    req.on('data', (b: Buffer) => c.push(b));
    req.on('end', () => r(Buffer.concat(c).toString()));
  });
}

test('sequential requests reuse one keep-alive connection; headers (without the connection-level ones) and body come back', async (t) => {
  const s = await serve(t, (req, res) => {
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.setHeader('x-path', req.url ?? '');
    res.end(`hello ${req.headers.host} ${req.headers['x-one']}`);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  for (let i = 0; i < 5; i++) {
    const r = await send(pool, { path: `/p${i}?q=1`, headers: { 'x-one': 'v' } });
    assert.equal(r.error, undefined);
    assert.equal(r.status, 200);
    assert.equal(r.body, `hello 127.0.0.1:${s.port} v`);
    assert.equal(r.headers['x-path'], `/p${i}?q=1`);
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    // node sends connection: keep-alive and keep-alive: timeout=5; they describe this hop only.
    assert.equal(r.headers.connection, undefined);
    assert.equal(r.headers['keep-alive'], undefined);
  }
  assert.equal(s.sockets.size, 1);
  assert.equal(pool.size, 1);
});

test('response header names come back lower-cased however each response on a connection spells and orders them', async (t) => {
  // One connection, the same positions holding other names (or other spellings), more or fewer of them, from response to response.
  const heads = [
    'X-A: 1\r\nSet-Cookie: a=1\r\nX-B: 2\r\nContent-Length: 2',
    'x-b: 3\r\nX-A: 4\r\nset-cookie: b=2\r\nSET-COOKIE: c=3\r\nContent-Length: 2',
    'X-C: 5\r\nX-a: 6\r\nX-A: 7\r\nContent-Length: 2',
    'X-A: 8\r\nX-B: 9\r\nX-C: 10\r\nContent-Length: 2',
    'X-C: 11\r\nContent-Length: 2',
    'X-C: 12\r\nContent-Length: 2\r\nX-C: 13',
  ];
  const s = await rawServer((sock, _head, i) => sock.write(`HTTP/1.1 200 OK\r\n${heads[i]}\r\n\r\nok`));
  t.after(() => s.close());
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  const got = [];
  for (let i = 0; i < heads.length; i++) got.push((await send(pool)).headers);
  assert.deepEqual(got, [
    { 'x-a': '1', 'set-cookie': 'a=1', 'x-b': '2', 'content-length': '2' },
    { 'x-b': '3', 'x-a': '4', 'set-cookie': ['b=2', 'c=3'], 'content-length': '2' },
    { 'x-c': '5', 'x-a': ['6', '7'], 'content-length': '2' },
    { 'x-a': '8', 'x-b': '9', 'x-c': '10', 'content-length': '2' },
    { 'x-c': '11', 'content-length': '2' },
    { 'x-c': ['12', '13'], 'content-length': '2' },
  ]);
  assert.equal(s.accepted, 1);
});

test('concurrent requests beyond the connection limit wait for a free connection', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const s = await serve(t, (_req, res) => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    setTimeout(() => {
      inFlight--;
      res.end('ok');
    }, 20);
  });
  const pool = poolTo(s.port, { connections: limitGate(2) });
  t.after(() => pool.destroy());
  const all = await Promise.all(Array.from({ length: 8 }, () => send(pool)));
  for (const r of all) assert.equal(r.body, 'ok');
  assert.equal(s.sockets.size, 2);
  assert.equal(maxInFlight, 2);
});

test('request bodies: buffered (content-length), streamed without length (chunked), streamed with content-length', async (t) => {
  const s = await serve(t, async (req, res) => {
    const body = await readAll(req);
    res.end(`${req.method} cl=${req.headers['content-length'] ?? '-'} te=${req.headers['transfer-encoding'] ?? '-'} ${body}`);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  let r = await send(pool, { method: 'POST', body: Buffer.from('abc') });
  assert.equal(r.body, 'POST cl=3 te=- abc');
  r = await send(pool, { method: 'POST', body: null });
  assert.equal(r.body, 'POST cl=0 te=- ');
  const chunked = new PassThrough();
  const p = send(pool, { method: 'PUT', body: chunked });
  chunked.write('one ');
  setTimeout(() => chunked.end('two'), 10);
  r = await p;
  assert.equal(r.body, 'PUT cl=- te=chunked one two');
  const sized = new PassThrough();
  const p2 = send(pool, { method: 'POST', headers: { 'content-length': '6' }, body: sized });
  sized.end('sixsix');
  r = await p2;
  assert.equal(r.body, 'POST cl=6 te=- sixsix');
  assert.equal(s.sockets.size, 1, 'every request went on the same connection');
});

test('a large streamed request body is sent with back-pressure and arrives whole', async (t) => {
  let release: (() => void) | undefined;
  const s = await serve(t, (req, res) => {
    // The upstream reads nothing for a while: the pool must pause the body, not buffer it all.
    req.pause();
    release = () => {
      req.resume();
      void readAll(req).then((b) => res.end(String(b.length)));
    };
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  const body = new PassThrough({ highWaterMark: 16 * 1024 });
  const total = 8 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'z');
  let written = 0;
  let blocked = false;
  const p = send(pool, { method: 'POST', body });
  await new Promise<void>((done) => {
    const pump = (): void => {
      while (written < total) {
        written += chunk.length;
        if (!body.write(chunk)) {
          blocked = true;
          body.once('drain', pump);
          return;
        }
      }
      body.end();
      done();
    };
    pump();
    const check = setInterval(() => {
      if (release && blocked) {
        clearInterval(check);
        release();
      }
    }, 5);
  });
  const r = await p;
  assert.ok(blocked, 'the body writer saw back-pressure');
  assert.equal(r.body, String(total));
});

test('HEAD, 204 and 304 responses carry no body and the connection is reused', async (t) => {
  const s = await serve(t, (req, res) => {
    if (req.url === '/204') res.writeHead(204).end();
    else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
    else res.writeHead(200, { 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  let r = await send(pool, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], '5');
  assert.equal(r.body, '');
  r = await send(pool, { path: '/204' });
  assert.equal(r.status, 204);
  r = await send(pool, { path: '/304' });
  assert.equal(r.status, 304);
  r = await send(pool, { path: '/' });
  assert.equal(r.body, 'hello');
  assert.equal(s.sockets.size, 1);
});

test('a paused response stops reading; resumed, it arrives whole and chunked trailers come through', async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024, 'q');
  const s = await serve(t, (req, res) => {
    if (req.url === '/trailers') {
      res.writeHead(200, { trailer: 'x-sum' });
      res.write('part1 ');
      res.addTrailers({ 'x-sum': '42' });
      res.end('part2');
      return;
    }
    res.end(big);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  let pausedOnce = false;
  let dataWhilePaused = 0;
  let paused = false;
  const r = await send(pool, {}, (c, ev) => {
    if (ev === 'data' && paused) dataWhilePaused++;
    if (ev === 'data' && !pausedOnce) {
      pausedOnce = true;
      paused = true;
      c.pause();
      setTimeout(() => {
        paused = false;
        c.resume();
      }, 50);
    }
  });
  assert.equal(r.error, undefined);
  assert.equal(r.body.length, big.length);
  assert.equal(dataWhilePaused, 0, 'no data while paused');
  const tr = await send(pool, { path: '/trailers' });
  assert.equal(tr.body, 'part1 part2');
  assert.equal(tr.headers['transfer-encoding'], undefined);
  assert.deepEqual({ ...tr.trailers }, { 'x-sum': '42' });
});

test('aborting mid-response closes that connection; the next request gets a fresh one', async (t) => {
  const s = await serve(t, (req, res) => {
    if (req.url === '/slow') {
      res.write('first');
      return;
    }
    res.end('ok');
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  const r = await send(pool, { path: '/slow' }, (c, ev) => {
    if (ev === 'data') c.abort(new Error('enough'));
  });
  assert.equal(r.error?.message, 'enough');
  assert.equal((await send(pool)).body, 'ok');
  assert.equal(s.sockets.size, 2);
  // Aborted while queued: never written.
  const pool1 = poolTo(s.port, { connections: limitGate(1) });
  t.after(() => pool1.destroy());
  const first = send(pool1, { path: '/slow' }, (c, ev) => {
    if (ev === 'data') setTimeout(() => c.abort(new Error('done')), 20);
  });
  const queued = await send(pool1, { path: '/never-sent' }, (c, ev) => {
    if (ev === 'start') c.abort(new Error('not now'));
  });
  assert.equal(queued.error?.message, 'not now');
  await first;
});

test('max_requests_per_connection: the last request says connection: close and the next opens a new connection', async (t) => {
  const seen: string[] = [];
  const s = await serve(t, (req, res) => {
    seen.push(String(req.headers.connection));
    res.end('ok');
  });
  const pool = poolTo(s.port, { maxRequestsPerConnection: 2 });
  t.after(() => pool.destroy());
  for (let i = 0; i < 4; i++) assert.equal((await send(pool)).body, 'ok');
  assert.equal(s.sockets.size, 2);
  assert.deepEqual(seen, ['undefined', 'close', 'undefined', 'close']);
});

test('a response with connection: close is not reused', async (t) => {
  const s = await serve(t, (_req, res) => {
    res.setHeader('connection', 'close');
    res.end('bye');
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  assert.equal((await send(pool)).body, 'bye');
  assert.equal((await send(pool)).body, 'bye');
  assert.equal(s.sockets.size, 2);
});

test('invalid request heads fail before anything is written; the connection stays usable', async (t) => {
  const s = await serve(t, (_req, res) => res.end('ok'));
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  // A name seen valid before is still followed by a checked value.
  assert.equal((await send(pool, { headers: { 'x-a': 'fine', 'Content-Length': '0' } })).body, 'ok');
  for (const bad of [{ headers: { 'x-a': 'v\r\nx-injected: 1' } }, { headers: { 'x-a': ['ok', 'a\nb'] } }, { headers: { 'x-c': 'a\u0000b' } }, { headers: { 'bad name': 'v' } }, { path: '/a b' }, { method: 'G T' }]) {
    const r = await send(pool, bad);
    assert.equal(r.error?.code, H1ErrorCode.InvalidRequest, JSON.stringify(bad));
  }
  assert.equal((await send(pool)).body, 'ok');
  assert.equal(s.sockets.size, 1);
});

test('headersTimeout fails a silent upstream; close() waits for in-flight requests, then refuses new ones', async (t) => {
  const s = await serve(t, (req, res) => {
    if (req.url === '/silent') return;
    setTimeout(() => res.end('late ok'), 30);
  });
  const pool = poolTo(s.port);
  const r = await send(pool, { path: '/silent', headersTimeout: 50 });
  assert.equal(r.error?.code, H1ErrorCode.HeadersTimeout);
  const inflight = send(pool);
  const closed = pool.close();
  assert.equal((await inflight).body, 'late ok');
  await closed;
  assert.equal(pool.size, 0);
  const after = await send(pool);
  assert.equal(after.error?.code, H1ErrorCode.PoolClosed);
});

test('connect timeout: a socket that never connects fails the request with H1_CONNECT_TIMEOUT', async (t) => {
  const pool = poolTo(1, { connect: () => new net.Socket(), connectTimeoutMs: 50 });
  t.after(() => pool.destroy());
  const r = await send(pool);
  assert.equal(r.error?.code, H1ErrorCode.ConnectTimeout);
  assert.equal(pool.size, 0);
});

test('pending: a queued request is charged to its priority until it is on a connection, cancelled or the pool destroyed; refusesPending only without an idle connection', async (t) => {
  const held: http.ServerResponse[] = [];
  let arrived: (() => void) | undefined;
  const s = await serve(t, (_req, res) => {
    held.push(res);
    arrived?.();
  });
  const counts = { default: 0, high: 0 };
  const key = (high: boolean): 'default' | 'high' => (high ? 'high' : 'default');
  const pending = { mayWait: (high: boolean) => counts[key(high)] < 1, waiting: (high: boolean) => void counts[key(high)]++, done: (high: boolean) => void counts[key(high)]-- };
  const pool = poolTo(s.port, { connections: limitGate(1), pending });
  t.after(() => pool.destroy());
  const upstream = (): Promise<void> => new Promise((r) => (arrived = r));

  let at = upstream();
  const first = send(pool);
  assert.deepEqual(counts, { default: 1, high: 0 }, 'pending while its connection connects');
  assert.equal(pool.refusesPending(false), true);
  assert.equal(pool.refusesPending(true), false, 'each priority has its own count');
  await at;
  assert.deepEqual(counts, { default: 0, high: 0 });

  let controller: { abort(err: Error): void } | undefined;
  const cancelled = send(pool, { highPriority: true }, (c, ev) => void (ev === 'start' && (controller = c)));
  assert.deepEqual(counts, { default: 0, high: 1 }, 'the connection is busy: it waits');
  controller!.abort(new Error('gone'));
  assert.deepEqual(counts, { default: 0, high: 0 });
  assert.ok((await cancelled).error);

  const second = send(pool);
  assert.deepEqual(counts, { default: 1, high: 0 });
  at = upstream();
  held[0].end('one');
  await at;
  assert.deepEqual(counts, { default: 0, high: 0 }, 'on the freed connection');
  held[1].end('two');
  assert.equal((await first).body, 'one');
  assert.equal((await second).body, 'two');

  counts.default = 1;
  assert.equal(pool.refusesPending(false), false, 'an idle connection: nothing waits');
  counts.default = 0;
  at = upstream();
  const third = send(pool);
  await at;
  const queued = send(pool);
  assert.deepEqual(counts, { default: 1, high: 0 });
  await pool.destroy();
  assert.deepEqual(counts, { default: 0, high: 0 }, 'destroyed: the queued request no longer waits');
  assert.ok((await queued).error);
  assert.ok((await third).error);
});
