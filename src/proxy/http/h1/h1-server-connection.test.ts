import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { H1ConnectionSet, H1ServerConnection, type H1ServerHandler, type H1ServerOptions } from './h1-server-connection.ts';
import type { H1Request } from './h1-request.ts';
import type { H1Response } from './h1-response.ts';

const OPTIONS: H1ServerOptions = { maxHeaderBytes: 8192, maxHeaders: 20, headersTimeoutMs: 0, requestTimeoutMs: 0, idleTimeoutMs: 0 };

interface Server {
  port: number;
  set: H1ConnectionSet;
  errors: { status: number; code: string }[];
  upgrades: { req: H1Request; early: Buffer }[];
}

/** A server on 127.0.0.1:0 whose requests go to `onRequest`; closed after the test. */
async function serve(t: TestContext, onRequest: (req: H1Request, res: H1Response, conn: H1ServerConnection) => void, options: Partial<H1ServerOptions> = {}): Promise<Server> {
  const set = new H1ConnectionSet({ ...OPTIONS, ...options });
  const s: Server = { port: 0, set, errors: [], upgrades: [] };
  const handler: H1ServerHandler = {
    onRequest: (conn, req, res) => onRequest(req, res, conn),
    onUpgrade: (conn, req, early) => {
      s.upgrades.push({ req, early });
      conn.socket.write('HTTP/1.1 101 Switching Protocols\r\n\r\n');
      conn.socket.on('data', (c: Buffer) => conn.socket.write(c));
      if (early.length) conn.socket.write(early);
    },
    onCodecError: (_conn, status, code) => void s.errors.push({ status, code }),
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    new H1ServerConnection(socket, set, handler);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    for (const so of sockets) so.destroy();
    server.close();
  });
  return s;
}

/** Sends raw bytes; resolves with everything received until the server closes (or `until` matches). */
function exchange(port: number, bytes: string | string[], until?: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    const parts = Array.isArray(bytes) ? bytes : [bytes];
    s.once('connect', () => {
      for (const p of parts) s.write(p, 'latin1');
    });
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (until?.(text)) {
        s.destroy();
        resolve({ text, closed: false });
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve({ text, closed: true }));
  });
}

const echo = (req: H1Request, res: H1Response): void => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.once('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'x-url': req.url, 'x-method': req.method, 'x-version': req.httpVersion });
    res.end(body);
  });
};

const count = (text: string, re: RegExp): number => text.match(new RegExp(re, 'g'))?.length ?? 0;

test('keep-alive requests with bodies (length and chunked) through node\'s own client', async (t) => {
  const s = await serve(t, echo);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const send = (path: string, body: string, chunked: boolean) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const r = http.request({ port: s.port, host: '127.0.0.1', path, method: 'POST', agent, headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(body) } }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
      });
      r.on('error', reject);
      if (chunked) for (const part of body.match(/.{1,3}/g) ?? []) r.write(part);
      else r.write(body);
      r.end();
    });
  const a = await send('/a', 'hello', false);
  assert.equal(a.status, 200);
  assert.equal(a.body, 'hello');
  assert.equal(a.headers['content-length'], '5');
  assert.equal(a.headers.connection, 'keep-alive');
  assert.ok(a.headers.date);
  const b = await send('/b?q=1', 'chunked body here', true);
  assert.equal(b.body, 'chunked body here');
  assert.equal(b.headers['x-url'], '/b?q=1');
  const big = 'z'.repeat(300_000);
  assert.equal((await send('/big', big, false)).body, big);
});

test('pipelined requests are answered in order, each exactly once', async (t) => {
  let delay = 30;
  const s = await serve(t, (req, res) => {
    // Earlier requests answer later: order must still hold.
    setTimeout(() => res.writeHead(200, { 'x-url': req.url }).end(Buffer.from(req.url)), (delay -= 10));
  });
  const { text } = await exchange(s.port, 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\nConnection: close\r\n\r\n');
  const urls = [...text.matchAll(/x-url: (\/\d)/g)].map((m) => m[1]);
  assert.deepEqual(urls, ['/1', '/2', '/3']);
  assert.match(text, /connection: close\r\n\r\n\/3$/);
});

test('streamed response: chunked framing with trailers; HEAD, 204 and 304 carry no body', async (t) => {
  const s = await serve(t, (req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(Buffer.from('abc'));
      setTimeout(() => {
        res.write(Buffer.from('defgh'));
        res.addTrailers({ 'x-sum': '8' });
        res.end();
      }, 10);
    } else if (req.url === '/204') res.writeHead(204, {}).end(Buffer.from('ignored'));
    else res.writeHead(200, { 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : Buffer.from('hello'));
  });
  const stream = await exchange(s.port, 'GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.match(stream.text, /\r\ntransfer-encoding: chunked\r\n/);
  assert.match(stream.text, /\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\nx-sum: 8\r\n\r\n$/);
  const head = await exchange(s.port, 'HEAD / HTTP/1.1\r\n\r\nGET /204 HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.match(head.text, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 5\r\n[^]*\r\n\r\nHTTP\/1\.1 204 No Content\r\n[^]*\r\n\r\n$/);
  assert.equal(count(head.text, /hello|ignored/), 0);
});

test('HTTP/1.0: close by default, keep-alive when asked; a streamed 1.0 response is delimited by the close', async (t) => {
  const s = await serve(t, (req, res) => {
    res.writeHead(200, {});
    res.write(Buffer.from('part1'));
    res.end(Buffer.from('part2'));
  });
  const plain = await exchange(s.port, 'GET / HTTP/1.0\r\n\r\n');
  assert.ok(plain.closed);
  assert.match(plain.text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(plain.text, /\r\nconnection: close\r\n\r\npart1part2$/);
  assert.doesNotMatch(plain.text, /transfer-encoding/);
  const ka = await exchange(s.port, 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', (x) => x.endsWith('part2'));
  // Without a length a 1.0 body can only end with the connection.
  assert.match(ka.text, /connection: close/);
  const s2 = await serve(t, (_req, res) => res.writeHead(200, { 'content-length': '2' }).end(Buffer.from('ok')));
  const ka2 = await exchange(s2.port, 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', (x) => x.endsWith('ok'));
  assert.match(ka2.text, /\r\nconnection: keep-alive\r\n/);
  assert.equal(ka2.closed, false);
});

test('Expect: 100-continue gets 100 before the body is sent', async (t) => {
  const s = await serve(t, echo);
  const sock = net.connect(s.port, '127.0.0.1');
  t.after(() => sock.destroy());
  let text = '';
  await new Promise<void>((resolve) => {
    sock.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text === 'HTTP/1.1 100 Continue\r\n\r\n') sock.write('hi');
      if (text.endsWith('\r\n\r\nhi')) resolve();
    });
    sock.write('POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
  });
  assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  // Any other expectation: 417 (as node's server), the connection stays usable.
  const other = await exchange(s.port, 'GET /e HTTP/1.1\r\nExpect: something-else\r\n\r\nGET /next HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.match(other.text, /^HTTP\/1\.1 417 Expectation Failed\r\n[^]*\r\n\r\nHTTP\/1\.1 200 OK\r\nx-url: \/next\r\n/);
});

test('codec errors: 400 or 431 with a close, reported once', async (t) => {
  const s = await serve(t, echo);
  const bad = await exchange(s.port, 'GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
  assert.match(bad.text, /^HTTP\/1\.1 400 Bad Request\r\n[^]*connection: close/);
  assert.ok(bad.closed);
  const many = await exchange(s.port, `GET / HTTP/1.1\r\n${Array.from({ length: 21 }, (_, i) => `h${i}: v\r\n`).join('')}\r\n`);
  assert.match(many.text, /^HTTP\/1\.1 431 /);
  const large = await exchange(s.port, `GET / HTTP/1.1\r\nx: ${'a'.repeat(9000)}\r\n\r\n`);
  assert.match(large.text, /^HTTP\/1\.1 431 /);
  assert.deepEqual(
    s.errors.map((e) => `${e.status} ${e.code}`),
    ['400 CL_AND_TE', '431 TOO_MANY_HEADERS', '431 HEADERS_TOO_LARGE'],
  );
});

test('headers timeout answers 408 and closes; an idle connection is closed silently', async (t) => {
  const s = await serve(t, echo, { headersTimeoutMs: 150 });
  const slow = await exchange(s.port, 'GET / HTTP/1.1\r\nHost: a\r\n');
  assert.match(slow.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.deepEqual(s.errors, [{ status: 408, code: 'REQUEST_HEADER_TIMEOUT' }]);
  const idle = await serve(t, echo, { idleTimeoutMs: 100 });
  const r = await exchange(idle.port, 'GET / HTTP/1.1\r\n\r\n');
  assert.ok(r.closed);
  assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.equal(count(r.text, /HTTP\/1\.1/), 1);
});

test('upgrade and CONNECT hand the socket over with the bytes after the head', async (t) => {
  const s = await serve(t, echo);
  const ws = await exchange(s.port, 'GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nEARLY', (x) => x.endsWith('EARLY'));
  assert.match(ws.text, /^HTTP\/1\.1 101 /);
  assert.equal(s.upgrades[0].req.headers.upgrade, 'websocket');
  const c = await exchange(s.port, ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: a-client-with-a-long-name\r\n\r\n', 'tunnel bytes'], (x) => x.endsWith('tunnel bytes'));
  assert.match(c.text, /^HTTP\/1\.1 101 /);
  assert.equal(s.upgrades[1].req.method, 'CONNECT');
  assert.equal(s.upgrades[1].req.url, 'example.com:443');
  // The early bytes are the handler's to keep: later reads (into the shared read buffer) leave them be.
  assert.equal(s.upgrades[0].early.toString('latin1'), 'EARLY');
});

test('a client closing mid-response closes the response; drain closes idle connections and ends busy ones after their response', async (t) => {
  let closes = 0;
  const held: { res?: H1Response } = {};
  const s = await serve(t, (_req, res) => {
    res.once('close', () => closes++);
    held.res = res;
  });
  const sock = net.connect(s.port, '127.0.0.1');
  sock.on('error', () => undefined);
  sock.write('GET / HTTP/1.1\r\n\r\n');
  while (!held.res) await new Promise((r) => setTimeout(r, 5));
  sock.destroy();
  while (closes === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(closes, 1);

  held.res = undefined;
  const idle = net.connect(s.port, '127.0.0.1');
  const idleClosed = new Promise((r) => idle.once('close', r));
  const busy = net.connect(s.port, '127.0.0.1');
  let busyText = '';
  busy.on('data', (c: Buffer) => (busyText += c.toString('latin1')));
  const busyClosed = new Promise((r) => busy.once('close', r));
  await new Promise((r) => idle.once('connect', r));
  busy.write('GET / HTTP/1.1\r\n\r\n');
  while (!held.res) await new Promise((r) => setTimeout(r, 5));
  s.set.drainAll();
  await idleClosed;
  (held.res as H1Response | undefined)!.writeHead(200, { 'content-length': '2' }).end(Buffer.from('ok'));
  await busyClosed;
  assert.match(busyText, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n\r\nok$/);
});

test('invalid response headers throw as node\'s do, before anything is written', async (t) => {
  const s = await serve(t, (_req, res) => {
    assert.throws(() => res.writeHead(200, { 'x-bad': 'a\nb' }), { code: 'ERR_INVALID_CHAR' });
    assert.throws(() => res.writeHead(200, { 'bad name': 'v' }), { code: 'ERR_INVALID_HTTP_TOKEN' });
    assert.equal(res.headersSent, false);
    res.writeHead(502, { 'content-length': '0' }).end();
  });
  const r = await exchange(s.port, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
});

test('back-pressure: an unread request body and a flood of pipelined requests stop the socket being read', async (t) => {
  const held: { req?: H1Request; res?: H1Response; conn?: H1ServerConnection }[] = [];
  // /up and /0 are held; the pipelined ones behind them are answered at once with their path.
  const s = await serve(t, (req, res, conn) => {
    if (req.url === '/up' || req.url === '/0') held.push({ req, res, conn });
    else res.writeHead(200, { 'content-length': String(req.url.length) }).end(Buffer.from(req.url));
  });
  const body = Buffer.alloc(5 << 20, 'b');
  const sock = net.connect(s.port, '127.0.0.1');
  t.after(() => sock.destroy());
  sock.on('error', () => undefined);
  let text = '';
  sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
  sock.write(`POST /up HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`);
  sock.write(body);
  while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
  const first = held[0];
  // Nobody reads the body: the socket is paused once the request's buffer is full.
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(first.conn!.socket.bytesRead < 1 << 20, `read ${first.conn!.socket.bytesRead} bytes of an unread body`);
  let received = 0;
  first.req!.on('data', (c: Buffer) => (received += c.length));
  await new Promise((r) => first.req!.once('end', r));
  assert.equal(received, body.length);
  first.res!.writeHead(200, { 'content-length': '0' }).end();

  // 2000 pipelined requests behind an unanswered one: held up to a bound, then all answered in order.
  sock.write('GET /0 HTTP/1.1\r\n\r\n');
  while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
  const flood = Array.from({ length: 2000 }, (_, i) => `GET /${i + 1} HTTP/1.1\r\nx-pad: ${'p'.repeat(100)}\r\n\r\n`).join('');
  sock.write(flood);
  await new Promise((r) => setTimeout(r, 200));
  const readBefore = first.conn!.socket.bytesRead;
  assert.ok(readBefore - body.length < flood.length, 'the pipelined flood was not all read while a response was pending');
  held[1].res!.writeHead(200, { 'content-length': '0' }).end();
  while (!text.endsWith('/2000')) await new Promise((r) => setTimeout(r, 5));
  const bodies = [...text.matchAll(/\r\n\r\n(\/\d+)/g)].map((m) => m[1]);
  assert.deepEqual(bodies, Array.from({ length: 2000 }, (_, i) => `/${i + 1}`));
});

test('connections reading through the shared buffer keep their bytes: split heads, held bodies and pipelined requests interleaved on 6 connections', async (t) => {
  // Every read of every connection lands in the same buffer (network/shared-read-buffer.ts). A body
  // chunk queued unread, half a head or a pipelined request held while a response is pending must
  // be copies, or the other connections' reads overwrite them.
  const s = await serve(t, (req, res) => {
    // The body is read only after a while: its chunks wait in the request's queue meanwhile.
    setTimeout(() => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('end', () => res.writeHead(200, { 'x-url': req.url }).end(Buffer.concat(chunks)));
    }, 40);
  });
  // Each connection's body differs at every position, so a byte from elsewhere shows.
  const bodyOf = (id: number, n: number): string => Array.from({ length: n }, (_, i) => String.fromCharCode(65 + ((id * 7 + i) % 26))).join('');
  const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 3));
  const conns = await Promise.all(
    Array.from({ length: 6 }, async (_, id) => {
      const sock = net.connect(s.port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.setNoDelay(true);
      let text = '';
      sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
      t.after(() => sock.destroy());
      return { id, sock, text: () => text, body: bodyOf(id, 3000 + id * 101) };
    }),
  );
  const step = async (f: (c: (typeof conns)[number]) => string): Promise<void> => {
    for (const c of conns) {
      c.sock.write(f(c), 'latin1');
      await tick();
    }
  };
  await step((c) => `POST /c${c.id} HTTP/1.1\r\nHost: x\r\nContent-Le`);
  await step((c) => `ngth: ${c.body.length}\r\n\r\n${c.body.slice(0, 1000)}`);
  await step((c) => c.body.slice(1000, 2000));
  // The body's end, and in the same write the next request, held until the first is answered.
  await step((c) => `${c.body.slice(2000)}GET /next${c.id} HTTP/1.1\r\nHost: x\r\nx-id: ${String(c.id).repeat(40)}\r\nContent-Length: 0\r\n\r\n`);
  await step((c) => `POST /last${c.id} HTTP/1.1\r\nContent-Length: 5\r\n\r\n`);
  await step((c) => `end${c.id}!`);
  for (const c of conns) {
    for (let i = 0; i < 400 && !c.text().endsWith(`end${c.id}!`); i++) await new Promise((r) => setTimeout(r, 5));
    const responses = c.text().split(/(?=HTTP\/1\.1 200)/);
    assert.equal(responses.length, 3, c.text().slice(0, 500));
    assert.match(responses[0], new RegExp(`x-url: /c${c.id}\\r\\n`));
    assert.ok(responses[0].endsWith(`\r\n\r\n${c.body}`), `connection ${c.id}: the body came back changed`);
    assert.match(responses[1], new RegExp(`x-url: /next${c.id}\\r\\n`));
    assert.match(responses[2], new RegExp(`x-url: /last${c.id}\\r\\n[^]*\\r\\n\\r\\nend${c.id}!$`));
  }
});
