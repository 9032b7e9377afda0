// Streamed request bodies to an HTTP/2 upstream (undici, fed an iterable: h2-stream-body.ts):
// a body larger than every flow-control window arrives whole; an upstream that answers before
// reading the body and one that resets the stream mid-body end the request, and the proxy keeps
// no stream behind.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, staticCluster, type Harness } from './harness.ts';

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

async function h2Upstream(t: TestContext, onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void): Promise<number> {
  const server = http2.createServer();
  server.on('stream', onStream);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

async function proxyTo(t: TestContext, port: number): Promise<{ h: Harness; session: http2.ClientHttp2Session }> {
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('up', [port], H2)], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }])], listeners: [httpListener('l', 'r')] });
  const session = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  session.on('error', () => undefined);
  t.after(() => session.close());
  return { h, session };
}

/** Sends `chunks` (one per tick) and resolves with the response status and body, or the stream's error. */
function post(session: http2.ClientHttp2Session, chunks: Buffer[]): Promise<{ status: number; body: string } | Error> {
  return new Promise((resolve) => {
    const s = session.request({ ':method': 'POST', ':path': '/upload' });
    let status = 0;
    let body = '';
    s.on('response', (hd) => (status = Number(hd[':status'])));
    s.on('data', (c: Buffer) => (body += c.toString()));
    s.on('end', () => resolve({ status, body }));
    s.on('error', (err) => resolve(err));
    let i = 0;
    const next = (): void => {
      if (s.destroyed) return;
      if (i === chunks.length) return void s.end();
      if (s.write(chunks[i++])) setImmediate(next);
      else s.once('drain', next);
    };
    next();
  });
}

async function settled(h: Harness): Promise<number> {
  const active = () => h.rt.stats.all().find((s) => s.name === 'http.l.downstream_rq_active')!.value;
  for (let i = 0; i < 100 && active() !== 0; i++) await new Promise((r) => setTimeout(r, 20));
  return active();
}

test('a streamed body past every HTTP/2 window reaches the upstream whole', async (t) => {
  const port = await h2Upstream(t, (stream) => {
    const hash = createHash('sha256');
    let n = 0;
    stream.on('data', (c: Buffer) => {
      hash.update(c);
      n += c.length;
    });
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      stream.end(`${n} ${hash.digest('hex')}`);
    });
  });
  const { h, session } = await proxyTo(t, port);
  const chunks = Array.from({ length: 96 }, (_, i) => Buffer.alloc(64 * 1024, i));
  const expected = createHash('sha256');
  for (const c of chunks) expected.update(c);
  const r = await post(session, chunks);
  assert.ok(!(r instanceof Error), String(r));
  assert.equal(r.status, 200);
  assert.equal(r.body, `${96 * 64 * 1024} ${expected.digest('hex')}`);
  assert.equal(await settled(h), 0);
});

test('an upstream that answers before the body ends, or resets mid-body, ends the request; nothing stays active', async (t) => {
  let mode: 'early' | 'reset' = 'early';
  const port = await h2Upstream(t, (stream) => {
    stream.on('error', () => undefined);
    stream.once('data', () => {
      if (mode === 'early') {
        stream.respond({ ':status': 413 });
        stream.end('too much');
      } else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
  });
  const { h, session } = await proxyTo(t, port);
  const chunks = Array.from({ length: 200 }, () => Buffer.alloc(64 * 1024, 1));

  const early = await post(session, chunks);
  if (!(early instanceof Error)) {
    assert.equal(early.status, 413);
    assert.equal(early.body, 'too much');
  }
  assert.equal(await settled(h), 0, 'early answer: no stream left active');

  // Same session: this request's body only flows if the first one's rest was drained (else the
  // connection's flow-control window stays used up), as it was with undici's own stream piping.
  mode = 'reset';
  const reset = await post(session, chunks);
  // The response had not started: a 503 (UR), or the stream reset if the client was still sending.
  if (!(reset instanceof Error)) assert.equal(reset.status, 503);
  assert.equal(await settled(h), 0, 'reset: no stream left active');
  assert.ok(h.streams.some((s) => s.responseFlags !== 0), 'the reset is recorded with a response flag');
});
