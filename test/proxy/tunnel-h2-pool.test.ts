// Upgrades to an HTTP/2 cluster are streams of its pooled connections, as Envoy's router sends
// them: HTTP/1.1 WebSocket (and other upgrade_types) and HTTP/2 extended CONNECT tunnels through
// rig proxy to an h2c upstream (node:http2 with SETTINGS_ENABLE_CONNECT_PROTOCOL) share one
// upstream connection, max_concurrent_streams apart, and so do CONNECTs whose route has no
// connect_config (forwarded, not terminated); %UPSTREAM_LOCAL_ADDRESS% is the pooled
// connection's (for tcp_proxy's pooled tunnels too); the cluster's circuit breakers hold as in
// Envoy's pool: a tunnel that needs a connection max_connections forbids waits (upstream_cx_overflow),
// and one beyond max_pending_requests is refused 503 UO (upstream_rq_pending_overflow).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_ACCESS_LOG_TYPE, TCP_PROXY_TYPE } from '../../src/envoy/index.ts';
import { ResponseFlag } from '../../src/proxy/response-flags.ts';
import { listenLocal } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';
import { addr, configure, httpListener, routeConfig, startTestRuntime, staticCluster, LISTENER_TYPE } from './harness.ts';

type After = { after(fn: () => unknown): void };

function h2Options(options: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: options } },
    },
    ...extra,
  };
}

const ACCESS_LOG = (file: string) => [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: file, log_format: { text_format_source: { inline_string: '%UPSTREAM_LOCAL_ADDRESS% %RESPONSE_CODE%\n' } } } }];

interface H2Upstream {
  port: number;
  /** "address:port" each accepted connection came from, in order. */
  sessions: string[];
  /** ":protocol :path" of each tunnel stream. */
  streams: string[];
}

/**
 * An h2c server that takes extended CONNECT and plain CONNECT: answers 200 and echoes the tunnel's
 * bytes prefixed with its connection's number.
 */
async function h2Upstream(t: After): Promise<H2Upstream> {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } });
  const up: H2Upstream = { port: 0, sessions: [], streams: [] };
  const open = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    up.sessions.push(`${s.socket.remoteAddress}:${s.socket.remotePort}`);
  });
  server.on('stream', (stream, headers) => {
    const n = up.sessions.indexOf(`${stream.session?.socket.remoteAddress}:${stream.session?.socket.remotePort}`);
    up.streams.push(`${headers[':protocol'] ?? headers[':method']} ${headers[':path'] ?? headers[':authority']}`);
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200 });
    stream.on('data', (c: Buffer) => stream.write(`c${n} ${c}`));
    stream.on('end', () => stream.end());
  });
  t.after(() => {
    for (const s of open) s.destroy();
  });
  up.port = await listenLocal(server as unknown as net.Server, t);
  return up;
}

/** Sends a raw HTTP/1.1 request head through the proxy: resolves with the socket once a response head came, and that head. */
function sendHead(port: number, head: string, clients: net.Socket[]): Promise<{ socket: net.Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    clients.push(s);
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      resolve({ socket: s, head: buf.slice(0, end) });
    };
    s.on('data', onData);
    s.on('error', reject);
    s.write(head);
  });
}

/** An HTTP/1.1 upgrade through the proxy: the socket once the 101 head came, or the status line of a refusal. */
function h1Upgrade(port: number, urlPath: string, type: string, clients: net.Socket[]): Promise<{ socket: net.Socket; head: string }> {
  return sendHead(port, `GET ${urlPath} HTTP/1.1\r\nhost: tunnel.local\r\nconnection: Upgrade\r\nupgrade: ${type}\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n`, clients);
}

/** Writes `text` on a tunnel and resolves with what came back (one read). */
function roundTrip(s: net.Socket | http2.ClientHttp2Stream, text: string): Promise<string> {
  return new Promise((resolve) => {
    s.once('data', (d: Buffer) => resolve(String(d)));
    s.write(text);
  });
}

/** An extended CONNECT over an HTTP/2 connection to the proxy. */
async function h2Upgrade(port: number, urlPath: string, t: After): Promise<http2.ClientHttp2Stream> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());
  await new Promise((r) => session.once('remoteSettings', r));
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': urlPath, ':authority': 'tunnel.local' }, { endStream: false });
  const status = await new Promise<number>((resolve, reject) => {
    stream.once('response', (h) => resolve(Number(h[':status'])));
    stream.once('error', reject);
  });
  assert.equal(status, 200);
  return stream;
}

async function logLines(file: string, n: number): Promise<string[]> {
  const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  await until(`${n} access log lines`, () => lines().length >= n);
  return lines();
}

test('upgrades to an HTTP/2 cluster share its pooled connections (max_concurrent_streams apart), logged with the pooled connection local address', async (t) => {
  const up = await h2Upstream(t);
  const h = await startTestRuntime(t);
  const log = path.join(tempDir(t, 'rig-tunnel-pool-'), 'access.log');
  const routes = routeConfig('r', [
    { match: { prefix: '/one' }, route: { cluster: 'one-stream' } },
    { match: { prefix: '/' }, route: { cluster: 'h2up' } },
  ]);
  await configure(h, {
    clusters: [staticCluster('h2up', [up.port], h2Options({})), staticCluster('one-stream', [up.port], h2Options({ max_concurrent_streams: 1 }))],
    listeners: [httpListener('l', routes, { upgrade_configs: [{ upgrade_type: 'websocket' }, { upgrade_type: 'echo' }], http2_protocol_options: { allow_connect: true }, access_log: ACCESS_LOG(log) })],
  });
  const clients: net.Socket[] = [];
  t.after(() => clients.forEach((s) => s.destroy()));

  // Two HTTP/1.1 upgrades (WebSocket and a type undici has no name for) and an RFC 8441 one, open together.
  const a = await h1Upgrade(h.port('l'), '/ws/a', 'websocket', clients);
  const b = await h1Upgrade(h.port('l'), '/echo/b', 'echo', clients);
  const c = await h2Upgrade(h.port('l'), '/ws/c', t);
  assert.match(a.head, /^HTTP\/1\.1 101 /);
  assert.match(a.head, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
  assert.match(b.head, /^HTTP\/1\.1 101 [^]*upgrade: echo/);
  assert.deepEqual(await Promise.all([roundTrip(a.socket, 'a'), roundTrip(b.socket, 'b'), roundTrip(c, 'c')]), ['c0 a', 'c0 b', 'c0 c']);
  assert.equal(up.sessions.length, 1, 'three tunnels, one upstream connection');
  assert.deepEqual(up.streams, ['websocket /ws/a', 'echo /echo/b', 'websocket /ws/c']);
  assert.equal(h.rt.stats.counter('cluster.h2up.upstream_cx_total').value, 1);

  // One stream a connection: a second tunnel while the first is open takes another connection.
  const d = await h1Upgrade(h.port('l'), '/one/d', 'websocket', clients);
  const e = await h1Upgrade(h.port('l'), '/one/e', 'websocket', clients);
  assert.deepEqual(await Promise.all([roundTrip(d.socket, 'd'), roundTrip(e.socket, 'e')]), ['c1 d', 'c2 e']);
  assert.equal(up.sessions.length, 3);

  // Each tunnel's log line names the local address of the pooled connection it went on.
  for (const s of [a.socket, b.socket, d.socket, e.socket]) s.end();
  c.close();
  const lines = await logLines(log, 5);
  assert.deepEqual(lines.sort(), [`${up.sessions[0]} 200`, `${up.sessions[0]} 200`, `${up.sessions[0]} 200`, `${up.sessions[1]} 200`, `${up.sessions[2]} 200`].sort());
});

test('the circuit breakers of a pooled upgrade: beyond max_connections it waits (upstream_cx_overflow), beyond max_pending_requests it is refused 503 UO', async (t) => {
  const up = await h2Upstream(t);
  const h = await startTestRuntime(t);
  const breakers = { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] } };
  await configure(h, {
    clusters: [staticCluster('h2up', [up.port], h2Options({ max_concurrent_streams: 1 }, breakers))],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'h2up' } }]), { upgrade_configs: [{ upgrade_type: 'websocket' }] })],
  });
  const counter = (name: string) => h.rt.stats.counter(`cluster.h2up.${name}`).value;
  const clients: net.Socket[] = [];
  t.after(() => clients.forEach((s) => s.destroy()));

  const first = await h1Upgrade(h.port('l'), '/first', 'websocket', clients);
  assert.equal(await roundTrip(first.socket, 'one'), 'c0 one');
  // The one connection is full and max_connections allows no other: the second tunnel waits.
  const second = h1Upgrade(h.port('l'), '/second', 'websocket', clients);
  await until('upstream_cx_overflow', () => counter('upstream_cx_overflow') === 1, { intervalMs: 10 });
  // It holds the one pending slot: a third is refused.
  const third = await h1Upgrade(h.port('l'), '/third', 'websocket', clients);
  assert.match(third.head, /^HTTP\/1\.1 503 /);
  assert.equal(counter('upstream_rq_pending_overflow'), 1);
  await until('the refused tunnel recorded', () => h.streams.some((i) => i.path === '/third'), { intervalMs: 10 });
  const refused = h.streams.find((i) => i.path === '/third');
  assert.ok(refused && refused.responseFlags & ResponseFlag.UpstreamOverflow, 'flagged UO');
  assert.equal(refused?.responseCodeDetails, 'upstream_reset_before_response_started{overflow}');

  // The first tunnel ends: the waiting one takes its place on the same connection.
  first.socket.end();
  const s = await second;
  assert.match(s.head, /^HTTP\/1\.1 101 /);
  assert.equal(await roundTrip(s.socket, 'two'), 'c0 two');
  assert.equal(up.sessions.length, 1);
  assert.deepEqual(up.streams, ['websocket /first', 'websocket /second']);
});

test("tcp_proxy's pooled HTTP/2 tunnels: %UPSTREAM_LOCAL_ADDRESS% is the pooled connection's; beyond max_pending_requests the connection closes, flagged UO", async (t) => {
  const up = await h2Upstream(t);
  const h = await startTestRuntime(t);
  const log = path.join(tempDir(t, 'rig-tunnel-pool-'), 'tcp.log');
  const breakers = { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] } };
  const tunnel = (name: string, cluster: string) => ({
    name,
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: name, cluster, tunneling_config: { hostname: 'echo.local:7' }, access_log: ACCESS_LOG(log) } }] }],
  });
  await configure(h, {
    clusters: [staticCluster('h2up', [up.port], h2Options({ max_concurrent_streams: 1 }, breakers))],
    listeners: [tunnel('t', 'h2up')],
  });
  const clients: net.Socket[] = [];
  t.after(() => clients.forEach((s) => s.destroy()));
  const connect = () => {
    const s = net.connect(h.port('t'), '127.0.0.1');
    s.on('error', () => undefined);
    clients.push(s);
    return s;
  };
  const first = connect();
  assert.equal(await roundTrip(first, 'one'), 'c0 one');
  const second = connect();
  const secondEcho = roundTrip(second, 'two');
  await until('upstream_cx_overflow', () => h.rt.stats.counter('cluster.h2up.upstream_cx_overflow').value === 1, { intervalMs: 10 });
  const third = connect();
  third.write('three');
  await new Promise((r) => third.once('close', r));
  assert.equal(h.rt.stats.counter('cluster.h2up.upstream_rq_pending_overflow').value, 1);
  await until('the refused connection recorded', () => h.streams.some((i) => i.responseFlags & ResponseFlag.UpstreamOverflow), { intervalMs: 10 });
  first.end();
  assert.equal(await secondEcho, 'c0 two');
  second.end();
  const lines = await logLines(log, 3);
  assert.deepEqual(lines.sort(), ['- 0', `${up.sessions[0]} 0`, `${up.sessions[0]} 0`].sort());
  assert.equal(up.sessions.length, 1);
});

/** A CONNECT over HTTP/1.1: the socket once the response head came, and that head. */
function h1Connect(port: number, target: string, clients: net.Socket[]): Promise<{ socket: net.Socket; head: string }> {
  return sendHead(port, `CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`, clients);
}

test('a CONNECT whose route has no connect_config goes to an HTTP/2 cluster as a CONNECT stream of its pooled connections', async (t) => {
  const up = await h2Upstream(t);
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('h2up', [up.port], h2Options({}))],
    listeners: [httpListener('l', routeConfig('r', [{ match: { connect_matcher: {} }, route: { cluster: 'h2up', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } }]), { http2_protocol_options: { allow_connect: true } })],
  });
  const clients: net.Socket[] = [];
  t.after(() => clients.forEach((s) => s.destroy()));
  const a = await h1Connect(h.port('l'), 'db.local:5432', clients);
  assert.match(a.head, /^HTTP\/1\.1 200 /);
  const session = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  t.after(() => session.destroy());
  const b = session.request({ ':method': 'CONNECT', ':authority': 'cache.local:6379' }, { endStream: false });
  assert.equal(await new Promise<number>((resolve) => b.once('response', (hd) => resolve(Number(hd[':status'])))), 200);
  assert.deepEqual(await Promise.all([roundTrip(a.socket, 'a'), roundTrip(b, 'b')]), ['c0 a', 'c0 b']);
  assert.deepEqual(up.streams, ['CONNECT db.local:5432', 'CONNECT cache.local:6379']);
  assert.equal(up.sessions.length, 1);
});

test('connect_config belongs to the CONNECT upgrade, as Envoy checks it', async (t) => {
  const h = await startTestRuntime(t);
  const routes = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c', upgrade_configs: [{ upgrade_type: 'websocket', connect_config: {} }] } }]);
  assert.match(h.apply(LISTENER_TYPE, [httpListener('bad', routes)]).join('\n'), /Non-CONNECT upgrade type websocket has ConnectConfig/);
});

test("tcp_proxy's pooled POST tunnel: %UPSTREAM_LOCAL_ADDRESS% is the pooled connection's", async (t) => {
  const up = await h2Upstream(t);
  const h = await startTestRuntime(t);
  const log = path.join(tempDir(t, 'rig-tunnel-pool-'), 'post.log');
  await configure(h, {
    clusters: [staticCluster('h2up', [up.port], h2Options({}))],
    listeners: [
      {
        name: 'p',
        address: addr(0),
        filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'p', cluster: 'h2up', tunneling_config: { hostname: 'echo.local:7', use_post: true }, access_log: ACCESS_LOG(log) } }] }],
      },
    ],
  });
  const s = net.connect(h.port('p'), '127.0.0.1');
  t.after(() => s.destroy());
  assert.equal(await roundTrip(s, 'posted'), 'c0 posted');
  s.end();
  assert.deepEqual(await logLines(log, 1), [`${up.sessions[0]} 0`]);
  assert.deepEqual(up.streams, ['POST /']);
});

test("a pooled upgrade takes the breaker thresholds of its route's priority", async (t) => {
  const up = await h2Upstream(t);
  const h = await startTestRuntime(t);
  // DEFAULT admits no request, HIGH the default 1024.
  const breakers = { circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_requests: 0 }] } };
  const routes = routeConfig('r', [
    { match: { prefix: '/high' }, route: { cluster: 'h2up', priority: 'HIGH' } },
    { match: { prefix: '/' }, route: { cluster: 'h2up' } },
  ]);
  await configure(h, {
    clusters: [staticCluster('h2up', [up.port], h2Options({}, breakers))],
    listeners: [httpListener('l', routes, { upgrade_configs: [{ upgrade_type: 'websocket' }] })],
  });
  const clients: net.Socket[] = [];
  t.after(() => clients.forEach((s) => s.destroy()));
  assert.match((await h1Upgrade(h.port('l'), '/default', 'websocket', clients)).head, /^HTTP\/1\.1 503 /);
  const high = await h1Upgrade(h.port('l'), '/high', 'websocket', clients);
  assert.match(high.head, /^HTTP\/1\.1 101 /);
  assert.equal(await roundTrip(high.socket, 'hi'), 'c0 hi');
  assert.equal(h.rt.stats.counter('cluster.h2up.upstream_rq_pending_overflow').value, 1);
});

test('a CONNECT without connect_config to an HTTP/1.1 cluster is terminated (Envoy forwards it), said once per route', async (t) => {
  const accepted: net.Socket[] = [];
  const echo = net.createServer((s) => {
    accepted.push(s);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const port = await listenLocal(echo);
  t.after(() => {
    accepted.forEach((s) => s.destroy());
    echo.close();
  });
  const h = await startTestRuntime(t);
  const warn = t.mock.method(h.rt.ctx.log, 'warn');
  await configure(h, {
    clusters: [staticCluster('tcp', [port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { connect_matcher: {} }, route: { cluster: 'tcp', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } }]))],
  });
  const clients: net.Socket[] = [];
  t.after(() => clients.forEach((s) => s.destroy()));
  for (const text of ['one', 'two']) {
    const c = await h1Connect(h.port('l'), 'echo.local:7', clients);
    assert.match(c.head, /^HTTP\/1\.1 200 /);
    assert.equal(await roundTrip(c.socket, text), text);
  }
  const said = warn.mock.calls.map((c) => String(c.arguments.at(-1))).filter((m) => m.includes('connect_config'));
  assert.equal(said.length, 1);
  assert.match(said[0], /forwarded by Envoy to an HTTP\/1\.1 cluster; rig proxy terminates it/);
});
