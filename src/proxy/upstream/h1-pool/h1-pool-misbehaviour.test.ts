// The HTTP/1.1 upstream pool against raw TCP servers that misbehave: a close mid-body, a body
// delimited by close on a "keep-alive" connection, garbage and invalid status lines, an unsolicited
// 100, 1xx before the response, a slow body, idle connections closed by the server (also the
// stale-connection race), bytes nobody asked for, a Keep-Alive timeout.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { H1ErrorCode } from './h1-errors.ts';
import { poolTo, rawServer, send, type RawServer } from './h1-pool-test-kit.ts';

async function raw(t: { after(fn: () => unknown): void }, onRequest: Parameters<typeof rawServer>[0]): Promise<RawServer> {
  const s = await rawServer(onRequest);
  t.after(() => s.close());
  return s;
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

test('a close mid-body fails the request after its head; the next request gets a new connection', async (t) => {
  const s = await raw(t, (sock, head) => {
    if (head.startsWith('GET /cut')) {
      sock.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n' + 'x'.repeat(100));
      setTimeout(() => sock.destroy(), 10);
    } else sock.write(OK);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  const r = await send(pool, { path: '/cut' });
  assert.equal(r.status, 200);
  assert.equal(r.midBody, true);
  assert.equal(r.error?.code, H1ErrorCode.Closed);
  assert.equal(r.body.length, 100);
  assert.equal((await send(pool)).body, 'ok');
  assert.equal(s.accepted, 2);
});

test('a body without length on a keep-alive connection ends at close and that connection is not reused', async (t) => {
  const s = await raw(t, (sock, head) => {
    if (head.startsWith('GET /no-length')) {
      sock.write('HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n\r\nfirst ');
      setTimeout(() => sock.end('second'), 20);
    } else sock.write(OK);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  const r = await send(pool, { path: '/no-length' });
  assert.equal(r.error, undefined);
  assert.equal(r.body, 'first second');
  assert.equal((await send(pool)).body, 'ok');
  assert.equal(s.accepted, 2);
});

test('invalid responses are protocol errors: bad status line, garbage, CL+TE, unsolicited 100, 101 not asked for', async (t) => {
  const replies: Record<string, string> = {
    '/bad-status': 'HTTP/1.1 2OO OK\r\ncontent-length: 0\r\n\r\n',
    '/garbage': 'SSH-2.0-OpenSSH_9.6\r\n\r\n',
    '/cl-te': 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
    '/100': 'HTTP/1.1 100 Continue\r\n\r\n' + OK,
    '/101': 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
  };
  const s = await raw(t, (sock, head) => sock.write(replies[/^GET (\S+)/.exec(head)![1]] ?? OK));
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  for (const path of Object.keys(replies)) {
    const r = await send(pool, { path });
    assert.equal(r.error?.code, H1ErrorCode.Protocol, path);
    assert.equal(r.status, 0, `${path}: no head reached the handler`);
  }
  assert.equal((await send(pool)).body, 'ok');
  assert.equal(s.accepted, Object.keys(replies).length + 1, 'a connection that broke HTTP is never reused');
});

test('1xx responses before the final one are dropped; a slow body arrives whole', async (t) => {
  const s = await raw(t, (sock, head) => {
    if (head.startsWith('GET /slow')) {
      sock.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      let i = 0;
      const timer = setInterval(() => {
        if (i < 5) sock.write(`1\r\n${i++}\r\n`);
        else {
          clearInterval(timer);
          sock.write('0\r\n\r\n');
        }
      }, 5);
      return;
    }
    sock.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n'.repeat(50) + 'HTTP/1.1 102 Processing\r\n\r\n' + OK);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  const r = await send(pool);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
  const slow = await send(pool, { path: '/slow' });
  assert.equal(slow.body, '01234');
  assert.equal(s.accepted, 1);
});

test('idle connections the server closes are dropped; a reused connection closed under a GET is retried, a POST fails', async (t) => {
  // Every connection answers one request, then: /close-idle closes it once idle; otherwise the
  // second request on a connection finds it closed without an answer (the stale keep-alive race).
  const s = await raw(t, (sock, _head, index) => {
    const perConn = ((sock as unknown as { n?: number }).n = ((sock as unknown as { n?: number }).n ?? 0) + 1);
    if (perConn > 1) {
      sock.destroy();
      return;
    }
    sock.write(OK);
    if (index === 0) setTimeout(() => sock.end(), 10);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  assert.equal((await send(pool)).body, 'ok');
  // The server closes that idle connection: the pool notices and does not hand it out.
  for (let i = 0; i < 100 && pool.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(pool.size, 0);
  assert.equal((await send(pool)).body, 'ok');
  const before = s.accepted;
  const again = await send(pool);
  assert.equal(again.error, undefined, 'the GET went again on a new connection');
  assert.equal(again.body, 'ok');
  assert.equal(s.accepted, before + 1);
  const post = await send(pool, { method: 'POST', body: Buffer.from('x') });
  assert.equal(post.error?.code, H1ErrorCode.Closed, 'a POST is not repeated');
});

test('a GET lost on a reused connection goes again on a new connection, not on another idle one the server also closed', async (t) => {
  // The server's drain: after /drain, every connection that answered before is closed as a request
  // arrives on it (closed under the client, the close not yet read), fresh ones answer.
  const fresh = new Set<net.Socket>();
  let drained = false;
  const s = await raw(t, (sock, head) => {
    if (head.startsWith('GET /drain')) {
      drained = true;
      fresh.clear();
      sock.write('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok');
      sock.end();
      return;
    }
    if (drained && !fresh.has(sock) && (sock as unknown as { served?: boolean }).served) return void sock.destroy();
    (sock as unknown as { served?: boolean }).served = true;
    if (drained) fresh.add(sock);
    sock.write(OK);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  // Three idle keep-alive connections.
  assert.deepEqual((await Promise.all([send(pool), send(pool), send(pool)])).map((r) => r.body), ['ok', 'ok', 'ok']);
  assert.equal(s.accepted, 3);
  await send(pool, { path: '/drain' });
  const before = s.accepted;
  const r = await send(pool);
  assert.equal(r.error, undefined, 'the GET went again on a new connection');
  assert.equal(r.body, 'ok');
  assert.equal(s.accepted, before + 1);
});

test('Keep-Alive timeout: a connection whose upstream keeps it 1 s (minus the margin) is not reused; bytes after a response close it', async (t) => {
  const s = await raw(t, (sock, head) => {
    if (head.startsWith('GET /short')) sock.write('HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nok');
    else if (head.startsWith('GET /extra')) sock.write(OK + 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    else sock.write(OK);
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  assert.equal((await send(pool, { path: '/short' })).body, 'ok');
  assert.equal((await send(pool)).body, 'ok');
  assert.equal(s.accepted, 2);
  assert.equal((await send(pool, { path: '/extra' })).body, 'ok');
  assert.equal((await send(pool)).body, 'ok');
  assert.equal(s.accepted, 3);
});

test('bodyTimeout fails a response whose body stalls', async (t) => {
  const s = await raw(t, (sock) => sock.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  const r = await send(pool, { bodyTimeout: 50 });
  assert.equal(r.status, 200);
  assert.equal(r.error?.code, H1ErrorCode.BodyTimeout);
  for (let i = 0; i < 100 && s.open.size > 0; i++) await new Promise((res) => setTimeout(res, 5));
  assert.equal(s.open.size, 0, 'the stalled connection was closed');
});

/** 3000 bytes that differ by position and by response. */
const bodyOf = (id: string): string => Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + ((i * 7 + Number(id)) % 26))).join('');

test('heads split across reads and bodies interleaved on several connections arrive intact (one shared read buffer)', async (t) => {
  const s = await raw(t, (sock, head) => {
    const id = /^GET \/(\d+)/.exec(head)![1];
    const body = bodyOf(id);
    const parts = [`HTTP/1.1 200 OK\r\ncontent-le`, `ngth: ${body.length}\r\nx-id: ${id}`, `\r\n\r\n${body.slice(0, 1000)}`, body.slice(1000, 2000), body.slice(2000)];
    let i = 0;
    const next = (): void => {
      if (sock.destroyed) return;
      sock.write(parts[i++]);
      if (i < parts.length) setTimeout(next, 3 + Number(id) % 4);
    };
    next();
  });
  const pool = poolTo(s.port);
  t.after(() => pool.destroy());
  for (let round = 0; round < 2; round++) {
    const ids = Array.from({ length: 6 }, (_, i) => String(i + 1));
    // One of them pauses mid-body, so its unread bytes wait in the parser while others are read.
    const all = await Promise.all(ids.map((id) => send(pool, { path: `/${id}` }, (c, ev) => {
      if (id === '3' && ev === 'data') {
        c.pause();
        setTimeout(() => c.resume(), 15);
      }
    })));
    for (const [i, r] of all.entries()) {
      const id = ids[i];
      assert.equal(r.error, undefined, id);
      assert.equal(r.headers['x-id'], id);
      assert.equal(r.body, bodyOf(id), `body of /${id}`);
    }
  }
  assert.equal(s.accepted, 6, 'the connections were reused for the second round');
});
