// Cluster common_http_protocol_options.max_connection_duration on HTTP/2 upstream connections, as
// Envoy drains them: once a connection reaches its age no new stream goes on it (new requests open
// a new connection), its in-flight streams finish intact, then it closes; an idle one closes at
// its age. Both an explicit HTTP/2 cluster and use_downstream_protocol with an HTTP/2 client.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, staticCluster } from './harness.ts';
import { waitFor, until } from '../helpers/wait.ts';

const HTTP_OPTS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

interface H2cUpstream {
  readonly port: number;
  /** Session number of each stream, in arrival order, with its path. */
  readonly streams: { path: string; session: number }[];
  readonly closed: Set<number>;
  /** Answers the held /slow request. */
  release(): void;
}

/** An h2c server that numbers its sessions; /slow is held until release(), then answered in two parts. */
async function startH2c(t: { after(fn: () => unknown): void }): Promise<H2cUpstream> {
  const server = http2.createServer();
  const sessions = new Map<http2.Http2Session, number>();
  let held: http2.ServerHttp2Stream | undefined;
  const up: H2cUpstream = {
    port: 0,
    streams: [],
    closed: new Set(),
    release() {
      const s = held!;
      s.respond({ ':status': 201, 'content-type': 'text/plain' });
      s.write('slow ');
      setImmediate(() => s.end('body'));
    },
  };
  server.on('session', (session) => {
    const n = sessions.size;
    sessions.set(session, n);
    session.on('close', () => up.closed.add(n));
  });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    up.streams.push({ path, session: sessions.get(stream.session!)! });
    stream.resume();
    if (path === '/slow') held = stream;
    else stream.respond({ ':status': 200 }, { endStream: true });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sessions.keys()) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return Object.assign(up, { port: (server.address() as AddressInfo).port });
}

/** An HTTP/2 client to the proxy: GET `path`, the status and body. */
function get(client: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':path': path });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

async function drainsAgedConnections(t: { after(fn: () => unknown): void }, protocol: Record<string, unknown>): Promise<void> {
  const up = await startH2c(t);
  const h = await startTestRuntime(t);
  const opts = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTS, common_http_protocol_options: { max_connection_duration: '0.3s' }, ...protocol } } };
  await configure(h, { clusters: [staticCluster('up', [up.port], opts)], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]))] });
  const client = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  t.after(() => client.destroy());

  assert.equal((await get(client, '/first')).status, 200);
  const slow = get(client, '/slow');
  const old = await waitFor('the slow request upstream', () => up.streams.find((s) => s.path === '/slow')?.session, { timeoutMs: 5000, intervalMs: 10 });
  // Requests land on the slow request's connection until it ages, then on a new one.
  const fresh = await waitFor('a request on a new upstream connection', async () => {
    assert.equal((await get(client, '/next')).status, 200);
    const s = up.streams.at(-1)!.session;
    return s !== old ? s : undefined;
  }, { timeoutMs: 10_000, intervalMs: 20 });
  const onOld = up.streams.filter((s) => s.session === old).length;
  for (let i = 0; i < 3; i++) assert.equal((await get(client, '/after')).status, 200);
  assert.equal(up.streams.filter((s) => s.session === old).length, onOld, 'no new stream on the aged connection');
  assert.ok(!up.closed.has(old), 'the aged connection waits for its in-flight stream');

  up.release();
  assert.deepEqual(await slow, { status: 201, body: 'slow body' }, 'the in-flight stream completes intact');
  await until('the aged connection closes once its stream is done', () => up.closed.has(old), { timeoutMs: 5000, intervalMs: 10 });
  await until('the new connection closes at its age while idle', () => up.closed.has(fresh), { timeoutMs: 5000, intervalMs: 10 });
}

test('max_connection_duration drains HTTP/2 upstream connections (explicit http2_protocol_options)', async (t) => {
  await drainsAgedConnections(t, { explicit_http_config: { http2_protocol_options: {} } });
});

test('max_connection_duration drains HTTP/2 upstream connections (use_downstream_protocol, HTTP/2 client)', async (t) => {
  await drainsAgedConnections(t, { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} } });
});
