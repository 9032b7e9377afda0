// tcp_proxy tunneling_config (Envoy's TCP over HTTP): the connection's bytes reach a TCP echo
// server through a real CONNECT proxy written here (HTTP/1.1 with node:http's 'connect', HTTP/2
// with node:http2 CONNECT streams, and POST variants of both), both ways and with half-close; the
// hostname and headers_to_add formats are evaluated for the connection; a refusal closes the
// client's connection, flagged UF as Envoy's pool failure.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type tls from 'node:tls';
import { addr, configure, startTestRuntime, staticCluster, LISTENER_TYPE, SECRET_TYPE, type Harness } from './harness.ts';
import { makePki, sdsSecrets, sdsUpstreamTls } from './certs.ts';
import { listenLocal, startTcpEcho } from '../helpers/listen.ts';
import { ResponseFlag } from '../../src/proxy/response-flags.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const H2_OPTIONS = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } },
  },
};

interface Seen {
  method: string;
  target: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The "host:port" a tunnel names, as a TCP target. */
function dial(target: string): net.Socket {
  const i = target.lastIndexOf(':');
  return net.connect(Number(target.slice(i + 1)), target.slice(0, i));
}

/** An HTTP/1.1 tunnel proxy: CONNECT to the named target, POST /tunnel to `postTarget`; `refuse` answers 403. */
async function h1TunnelProxy(t: { after(fn: () => unknown): void }, seen: Seen[], postTarget: string, refuse = false): Promise<number> {
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', target: req.url ?? '', headers: req.headers });
    if (refuse) return res.writeHead(403).end('no');
    const up = dial(postTarget);
    up.on('error', () => res.destroy());
    up.once('connect', () => {
      res.writeHead(200, { 'x-tunnel': 'post' });
      res.flushHeaders();
      req.pipe(up);
      up.pipe(res);
    });
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen.push({ method: req.method ?? '', target: req.url ?? '', headers: req.headers });
    socket.on('error', () => undefined);
    if (refuse) return socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
    const up = dial(req.url ?? '');
    up.on('error', () => socket.destroy());
    up.once('connect', () => {
      socket.write('HTTP/1.1 200 Connection established\r\nx-tunnel: connect\r\n\r\n');
      if (head.length) up.write(head);
      socket.pipe(up).pipe(socket);
    });
  });
  t.after(() => server.closeAllConnections());
  return listenLocal(server, t);
}

/**
 * An HTTP/2 tunnel proxy: CONNECT streams to their :authority, POST streams to `postTarget`; a
 * CONNECT to `refuse` answers 403. `connections` counts the TCP connections it accepted.
 */
async function h2TunnelProxy(t: { after(fn: () => unknown): void }, seen: Seen[], postTarget: string, status = 200, opts: { refuse?: string; connections?: { count: number } } = {}): Promise<number> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    if (opts.connections) opts.connections.count++;
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const method = String(headers[':method']);
    const target = String(method === 'CONNECT' ? headers[':authority'] : headers[':path']);
    seen.push({ method, target, headers });
    stream.on('error', () => undefined);
    if (status !== 200) return stream.respond({ ':status': status }, { endStream: true });
    if (target === opts.refuse) return stream.respond({ ':status': 403 }, { endStream: true });
    const up = dial(method === 'CONNECT' ? target : postTarget);
    up.on('error', () => stream.destroy());
    up.once('connect', () => {
      stream.respond({ ':status': 200 });
      stream.pipe(up).pipe(stream);
    });
  });
  t.after(() => {
    for (const s of sessions) s.destroy();
  });
  return listenLocal(server as unknown as net.Server, t);
}

function tunnelListener(name: string, cluster: string, tunneling: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, address: addr(0), filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster, tunneling_config: tunneling, ...extra } }] }] };
}

/** Sends `text`, half-closes, and reads until the other side ends: what came back. */
function echoThrough(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.end(text);
  });
}

/** Connects and waits for the proxy to close the connection; the bytes that came first. */
function closedBy(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
    s.write('hello?');
  });
}

/** A connection whose first bytes came back through the tunnel: it stays open. */
function openTunnelOn(port: number, text: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const onData = (d: Buffer) => {
      out += d;
      if (out.length < text.length) return;
      s.off('data', onData);
      s.pause();
      resolve(s);
    };
    s.on('data', onData);
    s.on('error', reject);
    s.write(text);
  });
}

/** Sends `text` on an open tunnel and half-closes it: what came back until the other side ended. */
function finishTunnel(s: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.resume();
    s.end(text);
  });
}

async function lastStream(h: Harness, listener: string) {
  for (let i = 0; i < 100 && !h.streams.some((x) => x.downstreamLocalAddress?.endsWith(`:${h.port(listener)}`)); i++) await new Promise((r) => setTimeout(r, 20));
  return h.streams.findLast((x) => x.downstreamLocalAddress?.endsWith(`:${h.port(listener)}`));
}

test('HTTP/1.1 CONNECT and POST tunnels carry the bytes both ways, with the formatted hostname and headers', async (t) => {
  const echo = await startTcpEcho(t);
  const seen: Seen[] = [];
  const proxy = await h1TunnelProxy(t, seen, `127.0.0.1:${echo}`);
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('tunnel-proxy', [proxy])],
    listeners: [
      tunnelListener('connect', 'tunnel-proxy', { hostname: `127.0.0.1:${echo}`, headers_to_add: [{ header: { key: 'original-dst-port', value: '%DOWNSTREAM_LOCAL_PORT%' } }], propagate_response_headers: true }),
      tunnelListener('post', 'tunnel-proxy', { hostname: 'echo.example:%DOWNSTREAM_LOCAL_PORT%', use_post: true, post_path: '/tunnel' }),
    ],
  });
  const big = 'x'.repeat(300_000);
  assert.equal(await echoThrough(h.port('connect'), 'over connect ' + big), 'over connect ' + big);
  assert.equal(seen[0].method, 'CONNECT');
  assert.equal(seen[0].target, `127.0.0.1:${echo}`);
  assert.equal(seen[0].headers.host, `127.0.0.1:${echo}`);
  assert.equal(seen[0].headers['original-dst-port'], String(h.port('connect')));
  const info = await lastStream(h, 'connect');
  assert.deepEqual((info?.filterState?.['envoy.tcp_proxy.propagate_response_headers'] as Record<string, string>)['x-tunnel'], 'connect');

  assert.equal(await echoThrough(h.port('post'), 'over post ' + big), 'over post ' + big);
  assert.equal(seen[1].method, 'POST');
  assert.equal(seen[1].target, '/tunnel');
  assert.equal(seen[1].headers.host, `echo.example:${h.port('post')}`);
});

test('HTTP/2 CONNECT and POST tunnels (the cluster speaks HTTP/2)', async (t) => {
  const echo = await startTcpEcho(t);
  const seen: Seen[] = [];
  const proxy = await h2TunnelProxy(t, seen, `127.0.0.1:${echo}`);
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('h2-proxy', [proxy], H2_OPTIONS)],
    listeners: [
      tunnelListener('connect', 'h2-proxy', { hostname: `127.0.0.1:${echo}`, headers_to_add: [{ header: { key: 'x-via', value: 'rig' } }] }),
      tunnelListener('post', 'h2-proxy', { hostname: 'echo.example:9', use_post: true }),
      tunnelListener('idle', 'h2-proxy', { hostname: `127.0.0.1:${echo}` }, { idle_timeout: '0.2s' }),
    ],
  });
  assert.equal(await echoThrough(h.port('connect'), 'h2 connect'), 'h2 connect');
  assert.equal(seen[0].method, 'CONNECT');
  assert.equal(seen[0].target, `127.0.0.1:${echo}`);
  assert.equal(seen[0].headers['x-via'], 'rig');
  assert.equal(await echoThrough(h.port('post'), 'h2 post'), 'h2 post');
  assert.equal(seen[1].method, 'POST');
  assert.equal(seen[1].target, '/');
  assert.equal(seen[1].headers[':authority'], 'echo.example:9');
  assert.equal(seen[1].headers[':scheme'], 'http');

  // idle_timeout keeps working through the tunnel: an open, silent connection is closed (SI).
  const echoed = await closedBy(h.port('idle'));
  assert.equal(echoed, 'hello?');
  const info = await lastStream(h, 'idle');
  assert.ok(info && info.responseFlags & ResponseFlag.StreamIdleTimeout, 'flagged SI');
});

test('HTTP/2 tunnels are streams of the cluster\'s pooled connections (max_concurrent_streams apart); a refused stream fails its connection only', { timeout: 30_000 }, async (t) => {
  const echo = await startTcpEcho(t);
  const seen: Seen[] = [];
  const connections = { count: 0 };
  const proxy = await h2TunnelProxy(t, seen, `127.0.0.1:${echo}`, 200, { refuse: 'db.internal:5432', connections });
  const twoStreams = {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 2 } } },
    },
  };
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('h2-proxy', [proxy], H2_OPTIONS), staticCluster('two-streams', [proxy], twoStreams)],
    listeners: [
      tunnelListener('ok', 'h2-proxy', { hostname: `127.0.0.1:${echo}` }),
      tunnelListener('refused', 'h2-proxy', { hostname: 'db.internal:5432' }),
      tunnelListener('two', 'two-streams', { hostname: `127.0.0.1:${echo}` }),
    ],
  });
  const counter = (name: string) => h.rt.stats.counter(name).value;
  const clients: net.Socket[] = [];
  t.after(() => clients.forEach((s) => s.destroy()));
  const openTunnel = async (port: number, text: string) => {
    const s = await openTunnelOn(port, text);
    clients.push(s);
    return s;
  };
  const open = await Promise.all([0, 1, 2, 3].map((i) => openTunnel(h.port('ok'), `first ${i} `)));
  assert.equal(connections.count, 1, 'four tunnels, one upstream connection');
  // Refused while the others are open: that connection fails (UF), the shared one stays.
  assert.equal(await closedBy(h.port('refused')), '');
  const refused = await lastStream(h, 'refused');
  assert.ok(refused && refused.responseFlags & ResponseFlag.UpstreamConnectionFailure, 'flagged UF');
  assert.match(refused?.upstreamTransportFailureReason ?? '', /tunnel refused by upstream: 403/);
  const big = 'y'.repeat(200_000);
  assert.deepEqual(await Promise.all(open.map((s, i) => finishTunnel(s, `second ${i} ${big}`))), [0, 1, 2, 3].map((i) => `second ${i} ${big}`));
  assert.equal(connections.count, 1);
  assert.equal(counter('cluster.h2-proxy.upstream_cx_total'), 1);
  assert.equal(counter('cluster.h2-proxy.upstream_rq_total'), 5);

  // Two streams a connection: a third tunnel while two are established takes another connection
  // (an answered CONNECT still holds its stream).
  const three = await Promise.all([0, 1].map((i) => openTunnel(h.port('two'), `hi ${i}`)));
  assert.equal(connections.count, 2);
  three.push(await openTunnel(h.port('two'), 'hi 2'));
  assert.equal(connections.count, 3);
  assert.equal(counter('cluster.two-streams.upstream_cx_total'), 2);
  assert.deepEqual(await Promise.all(three.map((s) => finishTunnel(s, 'bye'))), ['bye', 'bye', 'bye']);
});

test('max_requests_per_connection over HTTP/2: a connection that carried that many tunnels takes no more, its open ones keep flowing', { timeout: 30_000 }, async (t) => {
  const echo = await startTcpEcho(t);
  const connections = { count: 0 };
  const proxy = await h2TunnelProxy(t, [], `127.0.0.1:${echo}`, 200, { connections });
  const twoRequests = {
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', common_http_protocol_options: { max_requests_per_connection: 2 }, explicit_http_config: { http2_protocol_options: {} } },
    },
  };
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('two-requests', [proxy], twoRequests)], listeners: [tunnelListener('t', 'two-requests', { hostname: `127.0.0.1:${echo}` })] });
  const open: net.Socket[] = [];
  t.after(() => open.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) open.push(await openTunnelOn(h.port('t'), `hello ${i}`));
  assert.equal(connections.count, 2, 'the third tunnel on a second connection');
  assert.equal(h.rt.stats.counter('cluster.two-requests.upstream_cx_max_requests').value, 1);
  assert.deepEqual(await Promise.all(open.map((s, i) => finishTunnel(s, `bye ${i}`))), ['bye 0', 'bye 1', 'bye 2']);
});

test('pooled HTTP/2 tunnels over TLS (h2 by ALPN): CONNECT and POST (scheme https) share one connection, the upstream peer recorded', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const proxyCert = pki.leaf('proxy', ['DNS:proxy.mesh', 'URI:spiffe://cluster.local/ns/edge/sa/forward-proxy']);
  const echo = await startTcpEcho(t);
  const seen: Seen[] = [];
  let connections = 0;
  const server = http2.createSecureServer({ key: proxyCert.key, cert: proxyCert.cert, ALPNProtocols: ['h2'] });
  server.on('secureConnection', (s: tls.TLSSocket) => {
    connections++;
    t.after(() => s.destroy());
  });
  server.on('stream', (stream, headers) => {
    seen.push({ method: String(headers[':method']), target: String(headers[':path'] ?? headers[':authority']), headers });
    stream.on('error', () => undefined);
    const up = dial(`127.0.0.1:${echo}`);
    up.once('connect', () => {
      stream.respond({ ':status': 200 });
      stream.pipe(up).pipe(stream);
    });
  });
  const port = await listenLocal(server as unknown as net.Server, t);
  const h = await startTestRuntime(t);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']), pki.ca)), []);
  await configure(h, {
    clusters: [staticCluster('tls-proxy', [port], { ...H2_OPTIONS, ...sdsUpstreamTls('proxy.mesh', { alpn: ['h2'] }) })],
    listeners: [tunnelListener('connect', 'tls-proxy', { hostname: `127.0.0.1:${echo}` }), tunnelListener('post', 'tls-proxy', { hostname: 'echo.example:9', use_post: true, post_path: '/up' })],
  });
  // Different hostnames, one TLS connection (undici would otherwise switch its server name).
  assert.deepEqual(await Promise.all([echoThrough(h.port('connect'), 'tls connect'), echoThrough(h.port('post'), 'tls post')]), ['tls connect', 'tls post']);
  assert.equal(connections, 1, 'both tunnels on one TLS connection');
  const post = seen.find((x) => x.method === 'POST')!;
  assert.equal(post.headers[':scheme'], 'https');
  assert.equal(post.headers[':authority'], 'echo.example:9');
  assert.equal(post.target, '/up');
  const info = await lastStream(h, 'connect');
  assert.equal(info?.upstreamPeer?.principal, 'spiffe://cluster.local/ns/edge/sa/forward-proxy');
});

test('a refused tunnel (403 over HTTP/1.1, 503 over HTTP/2) closes the client connection, flagged UF', async (t) => {
  const seen: Seen[] = [];
  const h1 = await h1TunnelProxy(t, seen, '127.0.0.1:9', true);
  const h2 = await h2TunnelProxy(t, seen, '127.0.0.1:9', 503);
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('refusing', [h1]), staticCluster('refusing-h2', [h2], H2_OPTIONS)],
    listeners: [
      tunnelListener('h1', 'refusing', { hostname: 'db.internal:5432' }),
      tunnelListener('h2', 'refusing-h2', { hostname: 'db.internal:5432' }),
      tunnelListener('retry', 'refusing', { hostname: 'db.internal:5432' }, { max_connect_attempts: 2 }),
    ],
  });
  assert.equal(await closedBy(h.port('h1')), '', 'nothing of the refusal reaches the client');
  assert.equal(await closedBy(h.port('h2')), '');
  assert.equal(seen.length, 2);
  for (const l of ['h1', 'h2']) {
    const info = await lastStream(h, l);
    assert.equal(info?.responseFlags !== undefined && (info.responseFlags & ResponseFlag.UpstreamConnectionFailure) !== 0, true, `${l}: UF`);
    assert.match(info?.upstreamTransportFailureReason ?? '', /tunnel refused by upstream: (403|503)/);
  }
  // As Envoy: a refusal is a connect failure of the attempt (another one within max_connect_attempts),
  // the CONNECT an upstream request; the TCP connection itself did not fail.
  assert.equal(await closedBy(h.port('retry')), '');
  assert.equal(seen.length, 4);
  const counter = (name: string) => h.rt.stats.counter(`cluster.refusing.${name}`).value;
  assert.equal(counter('upstream_rq_total'), 3);
  assert.equal(counter('upstream_cx_connect_fail'), 0);
});

test('tunneling_config is checked as Envoy checks it', async (t) => {
  const h = await startTestRuntime(t);
  const errs = h.apply(LISTENER_TYPE, [tunnelListener('bad', 'c', { hostname: 'a:1', post_path: '/x' }), tunnelListener('bad2', 'c', { hostname: '%DYNAMIC_METADATA(tunnel:address)%' })]);
  assert.match(errs.join('\n'), /post_path: Can't set a post path when POST method isn't used/);
  assert.match(errs.join('\n'), /hostname: unsupported substitution %DYNAMIC_METADATA\(tunnel:address\)%/);
  assert.match(h.apply(LISTENER_TYPE, [tunnelListener('bad3', 'c', {})]).join('\n'), /tunneling_config needs a hostname/);
});

test('a rig proxy process from a static bootstrap tunnels over HTTP/1.1 and HTTP/2 CONNECT', async (t) => {
  const echo = await startTcpEcho(t);
  const seen: Seen[] = [];
  const h1 = await h1TunnelProxy(t, seen, `127.0.0.1:${echo}`);
  const h2 = await h2TunnelProxy(t, seen, `127.0.0.1:${echo}`);
  const dir = tempDir(t, 'rig-tunnel-bootstrap-');
  const bootstrap = {
    node: { id: 'tunnel-test', cluster: 'tunnel-test' },
    static_resources: {
      clusters: [staticCluster('h1-proxy', [h1]), staticCluster('h2-proxy', [h2], H2_OPTIONS)],
      listeners: [tunnelListener('via-h1', 'h1-proxy', { hostname: `127.0.0.1:${echo}` }), tunnelListener('via-h2', 'h2-proxy', { hostname: `127.0.0.1:${echo}` })],
    },
  };
  const file = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const { ports } = await startRigProxyFromFile(t, file);
  assert.equal(await echoThrough(ports.listeners['via-h1'], 'one'), 'one');
  assert.equal(await echoThrough(ports.listeners['via-h2'], 'two'), 'two');
  assert.deepEqual(
    seen.map((x) => `${x.method} ${x.target}`),
    [`CONNECT 127.0.0.1:${echo}`, `CONNECT 127.0.0.1:${echo}`],
  );
});
