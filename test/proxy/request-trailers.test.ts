// Request trailers, as Envoy's codecs carry them. A chunked HTTP/1.1 request's are kept only with
// the connection manager's http_protocol_options.enable_trailers; an HTTP/2 request's always (the
// HTTP/2 codec has no such option). Then they go to an HTTP/2 upstream always and to an HTTP/1.1
// one (chunked) only when its cluster enables them; a retried request and a mirror get them too.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { SECRET_TYPE, configure, httpListener, routeConfig, startTestRuntime, staticCluster, type Harness } from './harness.ts';
import { listenLocal } from '../helpers/listen.ts';
import { makePki, sdsSecrets } from './certs.ts';

const OPTS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const H2 = { typed_extension_protocol_options: { [OPTS]: { '@type': `type.googleapis.com/${OPTS}`, explicit_http_config: { http2_protocol_options: {} } } } };
const H1_TRAILERS = { typed_extension_protocol_options: { [OPTS]: { '@type': `type.googleapis.com/${OPTS}`, explicit_http_config: { http_protocol_options: { enable_trailers: true } } } } };
const TRAILERS = { 'x-checksum': 'abc123' };

interface Seen {
  path: string;
  body: string;
  trailers: Record<string, unknown>;
}

interface Upstreams {
  seen: Record<'h1' | 'h2', Seen[]>;
  /** The next request (either upstream) is answered 503. */
  failNext: boolean;
  h2Port: number;
  h1Port: number;
}

/** An HTTP/2 and an HTTP/1.1 upstream that record each request's body and trailers. */
async function startUpstreams(t: TestContext): Promise<Upstreams> {
  const ups: Upstreams = { seen: { h2: [], h1: [] }, failNext: false, h2Port: 0, h1Port: 0 };
  const status = (): number => {
    const s = ups.failNext ? 503 : 200;
    ups.failNext = false;
    return s;
  };
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    let body = '';
    let trailers: Record<string, unknown> = {};
    stream.on('data', (c: Buffer) => (body += c));
    stream.on('trailers', (tr) => (trailers = Object.fromEntries(Object.entries(tr))));
    stream.on('end', () => {
      ups.seen.h2.push({ path: String(headers[':path']), body, trailers });
      stream.respond({ ':status': status() });
      stream.end('ok');
    });
  });
  const h1 = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      ups.seen.h1.push({ path: req.url ?? '', body, trailers: { ...req.trailers } });
      res.writeHead(status());
      res.end('ok');
    });
  });
  ups.h2Port = await listenLocal(h2 as unknown as net.Server, t);
  ups.h1Port = await listenLocal(h1, t);
  return ups;
}

const ROUTES = routeConfig('r', [
  { match: { prefix: '/h2/retry' }, route: { cluster: 'h2', retry_policy: { retry_on: '5xx', num_retries: 1 } } },
  { match: { prefix: '/h2' }, route: { cluster: 'h2' } },
  { match: { prefix: '/h1on/retry' }, route: { cluster: 'h1on', retry_policy: { retry_on: '5xx', num_retries: 1 } } },
  { match: { prefix: '/h1on/mirror' }, route: { cluster: 'h1on', request_mirror_policies: [{ cluster: 'h2' }] } },
  { match: { prefix: '/h1on' }, route: { cluster: 'h1on' } },
  { match: { prefix: '/h1off' }, route: { cluster: 'h1off' } },
]);

function clusters(ups: Upstreams): Record<string, unknown>[] {
  return [staticCluster('h2', [ups.h2Port], H2), staticCluster('h1on', [ups.h1Port], H1_TRAILERS), staticCluster('h1off', [ups.h1Port])];
}

/** The last request an upstream saw on `path`, waited for (a mirror's arrives after the response). */
async function lastSeen(ups: Upstreams, side: 'h1' | 'h2', path: string): Promise<Seen> {
  for (;;) {
    const s = ups.seen[side].findLast((x) => x.path === path);
    if (s) return s;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** POSTs a chunked body with a trailer; resolves with the response status. */
function chunkedPost(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`POST ${path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nbody\r\n0\r\nx-checksum: abc123\r\n\r\n`));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

test('request trailers: HCM enable_trailers, then HTTP/2 upstreams always, HTTP/1.1 upstreams with the cluster enable_trailers; retries and mirrors', async (t) => {
  const ups = await startUpstreams(t);
  const seen = ups.seen;
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: clusters(ups),
    listeners: [httpListener('on', ROUTES, { http_protocol_options: { enable_trailers: true } }), httpListener('off', ROUTES)],
  });
  const trailersOf = async (listener: string, path: string, side: 'h1' | 'h2'): Promise<Record<string, unknown>> => {
    assert.equal(await chunkedPost(h.port(listener), path), 200, `${listener} ${path}`);
    const s = seen[side].findLast((x) => x.path === path)!;
    assert.equal(s.body, 'body', `${listener} ${path}: body`);
    return s.trailers;
  };

  assert.deepEqual(await trailersOf('on', '/h2', 'h2'), { 'x-checksum': 'abc123' }, 'HTTP/2 upstream');
  assert.deepEqual(await trailersOf('on', '/h1on', 'h1'), { 'x-checksum': 'abc123' }, 'HTTP/1.1 upstream with enable_trailers');
  assert.deepEqual(await trailersOf('on', '/h1off', 'h1'), {}, 'HTTP/1.1 upstream without enable_trailers drops them');
  assert.deepEqual(await trailersOf('off', '/h2', 'h2'), {}, 'the connection manager without enable_trailers drops them');
  assert.deepEqual(await trailersOf('off', '/h1on', 'h1'), {}, 'the connection manager without enable_trailers drops them');

  // A retry replays the body, trailers included.
  ups.failNext = true;
  const before = seen.h1.length;
  assert.equal(await chunkedPost(h.port('on'), '/h1on/retry'), 200);
  assert.deepEqual(
    seen.h1.slice(before).map((s) => [s.body, s.trailers]),
    [
      ['body', { 'x-checksum': 'abc123' }],
      ['body', { 'x-checksum': 'abc123' }],
    ],
  );

  // A mirror's copy of the body ends with them too.
  assert.deepEqual(await trailersOf('on', '/h1on/mirror', 'h1'), { 'x-checksum': 'abc123' });
  while (!seen.h2.some((s) => s.path === '/h1on/mirror')) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(seen.h2.find((s) => s.path === '/h1on/mirror')!.trailers, { 'x-checksum': 'abc123' }, 'the mirror (HTTP/2)');
});

/** POSTs "body" over an HTTP/2 session, with `trailers` after it when given; resolves with the response status. */
function h2Post(session: http2.ClientHttp2Session, path: string, trailers: Record<string, string> | undefined, headers: http2.OutgoingHttpHeaders = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': 'POST', ':path': path, ...headers }, { waitForTrailers: trailers !== undefined });
    if (trailers) s.on('wantTrailers', () => s.sendTrailers(trailers));
    let status = 0;
    s.on('response', (h) => (status = Number(h[':status'])));
    s.resume();
    s.on('end', () => resolve(status));
    s.on('error', reject);
    s.end('body');
  });
}

/** One HPACK literal field, not indexed, no Huffman (names and values under 128 bytes). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/**
 * An h2c POST whose HEADERS, DATA and trailing HEADERS frames go in one write (one TCP segment
 * here), so that the proxy reads the trailers with the request; resolves once its response head comes.
 */
function oneWritePost(port: number, path: string): Promise<void> {
  const END_STREAM = 1;
  const END_HEADERS = 4;
  const request = Buffer.concat([
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    frame(4, 0, 0, Buffer.alloc(0)),
    frame(1, END_HEADERS, 1, Buffer.concat([literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', path), literal(':authority', 't')])),
    frame(0, 0, 1, Buffer.from('body')),
    frame(1, END_HEADERS | END_STREAM, 1, literal('x-checksum', 'abc123')),
  ]);
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      for (let at = 0; at + 9 <= got.length; at += 9 + got.readUIntBE(at, 3)) {
        if (got[at + 3] === 1 && got.readUInt32BE(at + 5) === 1) {
          s.destroy();
          resolve();
        }
      }
    });
    s.on('error', reject);
  });
}

function connect(t: TestContext, url: string, opts: http2.SecureClientSessionOptions = {}): http2.ClientHttp2Session {
  const session = http2.connect(url, opts);
  t.after(() => session.close());
  return session;
}

/** The listener `name` with TLS (the SDS `default` certificate) offering h2 by ALPN. */
function tlsListener(name: string): Record<string, unknown> {
  const l = httpListener(name, ROUTES);
  const SDS = { name: 'default', sds_config: { ads: {} } };
  (l.filter_chains as Record<string, unknown>[])[0].transport_socket = {
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', common_tls_context: { alpn_protocols: ['h2'], tls_certificate_sds_secret_configs: [SDS] } },
  };
  return l;
}

test('HTTP/2 request trailers (h2c, h2 over TLS): to HTTP/2 upstreams always, to HTTP/1.1 upstreams with the cluster enable_trailers; retries and mirrors', async (t) => {
  const ups = await startUpstreams(t);
  const pki = makePki();
  t.after(() => pki.cleanup());
  const h: Harness = await startTestRuntime(t);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('proxy', ['DNS:proxy.test']), pki.ca)), []);
  // No enable_trailers on the connection manager: an HTTP/1 option, the HTTP/2 codec has none.
  await configure(h, { clusters: clusters(ups), listeners: [httpListener('h2c', ROUTES), tlsListener('tls')] });
  const h2c = connect(t, `http://127.0.0.1:${h.port('h2c')}`);
  const h2tls = connect(t, `https://127.0.0.1:${h.port('tls')}`, { ca: pki.ca, servername: 'proxy.test' });
  const trailersOf = async (session: http2.ClientHttp2Session, path: string, side: 'h1' | 'h2', send: Record<string, string> | null = TRAILERS): Promise<Record<string, unknown>> => {
    assert.equal(await h2Post(session, path, send ?? undefined), 200, path);
    const s = await lastSeen(ups, side, path);
    assert.equal(s.body, 'body', `${path}: body`);
    return s.trailers;
  };

  assert.deepEqual(await trailersOf(h2c, '/h2', 'h2'), TRAILERS, 'HTTP/2 upstream');
  assert.deepEqual(await trailersOf(h2c, '/h1on', 'h1'), TRAILERS, 'HTTP/1.1 upstream with enable_trailers');
  assert.deepEqual(await trailersOf(h2c, '/h1off', 'h1'), {}, 'HTTP/1.1 upstream without enable_trailers drops them');
  assert.deepEqual(await trailersOf(h2tls, '/h2/tls', 'h2'), TRAILERS, 'h2 over TLS, HTTP/2 upstream');
  assert.deepEqual(await trailersOf(h2tls, '/h1on/tls', 'h1'), TRAILERS, 'h2 over TLS, HTTP/1.1 upstream with enable_trailers');
  // A body without trailers (a gRPC request's shape) still ends, with none.
  assert.deepEqual(await trailersOf(h2c, '/h2/none', 'h2', null), {});
  assert.deepEqual(await trailersOf(h2c, '/h1on/none', 'h1', null), {});

  // gRPC has no request trailers: a gRPC request's are not waited for (an extra frame per call upstream).
  assert.equal(await h2Post(h2c, '/h2/grpc', TRAILERS, { 'content-type': 'application/grpc' }), 200);
  assert.deepEqual(await lastSeen(ups, 'h2', '/h2/grpc'), { path: '/h2/grpc', body: 'body', trailers: {} });

  // The trailers read in the same segment as the request's HEADERS frame are not missed.
  await oneWritePost(h.port('h2c'), '/h2/one-write');
  assert.deepEqual((await lastSeen(ups, 'h2', '/h2/one-write')).trailers, TRAILERS);
  await oneWritePost(h.port('h2c'), '/h1on/one-write');
  assert.deepEqual((await lastSeen(ups, 'h1', '/h1on/one-write')).trailers, TRAILERS);

  // A retry replays the body, trailers included: streamed with a copy (no content-length), or
  // buffered before routing (a content-length within the buffer limit).
  for (const [path, side, headers] of [
    ['/h1on/retry', 'h1', {}],
    ['/h2/retry', 'h2', {}],
    ['/h2/retry/buffered', 'h2', { 'content-length': '4' }],
  ] as const) {
    ups.failNext = true;
    const before = ups.seen[side].length;
    assert.equal(await h2Post(h2c, path, TRAILERS, headers), 200, path);
    assert.deepEqual(
      ups.seen[side].slice(before).map((s) => [s.body, s.trailers]),
      [
        ['body', TRAILERS],
        ['body', TRAILERS],
      ],
      path,
    );
  }

  // A mirror's copy of the body ends with them too.
  assert.deepEqual(await trailersOf(h2c, '/h1on/mirror', 'h1'), TRAILERS);
  assert.deepEqual((await lastSeen(ups, 'h2', '/h1on/mirror')).trailers, TRAILERS, 'the mirror (HTTP/2)');
});
