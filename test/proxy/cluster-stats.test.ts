// Per-cluster upstream connection stats (Envoy's cluster_stats: upstream_cx_http1_total,
// _http2_total, _connect_timeout, _idle_timeout, _max_requests, _max_duration_reached,
// _protocol_error, _destroy_local / _remote / _with_active_rq, _rx/_tx_bytes_total,
// upstream_rq_pending_total / _active, upstream_rq_cancelled, and a TLS cluster's ssl.*) counted by
// the HTTP/1.1 pool, the HTTP/2 pool and tcp_proxy, read from the admin port's /stats?format=json
// and /stats/prometheus.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { createAdminHandler } from '../../src/proxy/admin/admin-server.ts';
import { LogLevels } from '../../src/proxy/admin/logging.ts';
import { silentLogger } from '../../src/core/log.ts';
import { addr, configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from './harness.ts';
import { waitFor } from '../helpers/wait.ts';
import { makePki } from './certs.ts';

const HTTP_OPTS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const UPSTREAM_TLS = { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni: 'upstream.test' } };

function protocolOptions(o: Record<string, unknown>): Record<string, unknown> {
  return { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTS, ...o } } };
}

/** The runtime's admin handler on 127.0.0.1:0, closed with the test. */
async function adminPort(t: { after(fn: () => unknown): void }, h: Harness): Promise<number> {
  const admin = http.createServer(createAdminHandler({ runtime: h.rt, bootstrap: {}, commandLine: [], onQuit: () => undefined, logLevels: new LogLevels(silentLogger.child({})) }));
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => admin.close(() => r())));
  return (admin.address() as AddressInfo).port;
}

async function get(port: number, path: string): Promise<string> {
  const r = await request(port, { path });
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return r.body;
}

/** cluster.<name>.* from /stats?format=json, without the prefix; a stat that does not exist is absent. */
async function clusterStats(port: number, cluster: string): Promise<Record<string, number>> {
  // The last element is Envoy's {"histograms": ...} summary, without a name.
  const body = JSON.parse(await get(port, `/stats?format=json&filter=${encodeURIComponent(`^cluster\\.${cluster}\\.`)}`)) as { stats: { name?: string; value: number }[] };
  const out: Record<string, number> = {};
  for (const s of body.stats) if (s.name !== undefined) out[s.name.slice(`cluster.${cluster}.`.length)] = s.value;
  return out;
}

/** How many values an Envoy histogram of the runtime recorded (0 when it does not exist). */
function histogramCount(h: Harness, name: string): number {
  return h.rt.stats.histograms().find((x) => x.name === name)?.count ?? 0;
}

/** Polls until the cluster's stats satisfy `ok`; returns them. */
function statsWhen(port: number, cluster: string, what: string, ok: (s: Record<string, number>) => boolean): Promise<Record<string, number>> {
  return waitFor(what, async () => {
    const s = await clusterStats(port, cluster);
    return ok(s) ? s : undefined;
  }, { timeoutMs: 10_000, intervalMs: 20 });
}

/** A TCP server that accepts and never says a word (a TLS handshake to it never completes). */
async function silentServer(t: { after(fn: () => unknown): void }): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

test('HTTP/1.1: http1_total, bytes, remote closes with and without a request, protocol errors; /stats/prometheus has them', async (t) => {
  // /close answers and closes its socket; /drop closes the socket without answering; /garbage is not HTTP.
  const up = await startUpstream('h1', (req, res) => {
    if (req.url === '/close') {
      res.end('bye');
      res.on('finish', () => setTimeout(() => req.socket.destroy(), 20));
      return true;
    }
    if (req.url === '/drop') {
      req.socket.destroy();
      return true;
    }
    if (req.url === '/garbage') {
      req.socket.end('NOT HTTP AT ALL\r\n\r\n');
      return true;
    }
    return false;
  });
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [staticCluster('h1', [up.port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'h1', retry_policy: { num_retries: 0 } } }]))],
  });
  const admin = await adminPort(t, h);
  assert.equal((await request(h.port('l'), { path: '/close' })).status, 200);
  let s = await statsWhen(admin, 'h1', 'the closed connection counted', (x) => x.upstream_cx_destroy === 1);
  assert.equal(s.upstream_cx_http1_total, 1);
  assert.equal(s.upstream_cx_http2_total, 0);
  assert.equal(s.upstream_cx_destroy_remote, 1, 'the upstream closed it');
  assert.equal(s.upstream_cx_destroy_local, 0);
  assert.equal(s.upstream_cx_destroy_with_active_rq, 0);
  assert.ok(s.upstream_cx_tx_bytes_total > 20, `request bytes counted: ${s.upstream_cx_tx_bytes_total}`);
  assert.ok(s.upstream_cx_rx_bytes_total > 20, `response bytes counted: ${s.upstream_cx_rx_bytes_total}`);

  assert.equal((await request(h.port('l'), { path: '/drop' })).status, 503);
  s = await statsWhen(admin, 'h1', 'the dropped connection counted', (x) => x.upstream_cx_destroy === 2);
  assert.equal(s.upstream_cx_destroy_remote, 2);
  assert.equal(s.upstream_cx_destroy_with_active_rq, 1);
  assert.equal(s.upstream_cx_destroy_remote_with_active_rq, 1);
  assert.equal(s.upstream_cx_destroy_local_with_active_rq, 0);

  assert.equal((await request(h.port('l'), { path: '/garbage' })).status, 502);
  s = await statsWhen(admin, 'h1', 'the protocol error counted', (x) => x.upstream_cx_destroy === 3);
  assert.equal(s.upstream_cx_protocol_error, 1);
  assert.equal(s.upstream_cx_destroy_local_with_active_rq, 1, 'the proxy closed the connection that broke HTTP/1.1');

  const prom = await get(admin, '/stats/prometheus');
  assert.match(prom, /^envoy_cluster_upstream_cx_http1_total\{envoy_cluster_name="h1"\} 3$/m);
  assert.match(prom, /^envoy_cluster_upstream_cx_destroy_remote_with_active_rq\{envoy_cluster_name="h1"\} 1$/m);
  assert.match(prom, /^envoy_cluster_upstream_cx_protocol_error\{envoy_cluster_name="h1"\} 1$/m);
});

test('HTTP/1.1: idle timeout, max requests per connection and max connection duration close connections locally', async (t) => {
  const idle = await startUpstream('idle');
  const maxrq = await startUpstream('maxrq');
  const aged = await startUpstream('aged');
  const h = await startTestRuntime(t, [idle, maxrq, aged]);
  const h1 = { explicit_http_config: { http_protocol_options: {} } };
  await configure(h, {
    clusters: [
      staticCluster('idle', [idle.port], protocolOptions({ ...h1, common_http_protocol_options: { idle_timeout: '0.1s' } })),
      staticCluster('maxrq', [maxrq.port], protocolOptions({ ...h1, common_http_protocol_options: { max_requests_per_connection: 2 } })),
      staticCluster('aged', [aged.port], protocolOptions({ ...h1, common_http_protocol_options: { max_connection_duration: '0.1s' } })),
    ],
    listeners: [httpListener('l', routeConfig('r', ['idle', 'maxrq', 'aged'].map((c) => ({ match: { prefix: '/' + c }, route: { cluster: c } }))))],
  });
  const admin = await adminPort(t, h);
  assert.equal((await request(h.port('l'), { path: '/idle' })).status, 200);
  let s = await statsWhen(admin, 'idle', 'the idle connection closed', (x) => x.upstream_cx_destroy === 1);
  assert.equal(s.upstream_cx_idle_timeout, 1);
  assert.equal(s.upstream_cx_destroy_local, 1);
  assert.equal(s.upstream_cx_destroy_remote, 0);

  for (let i = 0; i < 3; i++) assert.equal((await request(h.port('l'), { path: '/maxrq' })).status, 200);
  s = await clusterStats(admin, 'maxrq');
  assert.equal(s.upstream_cx_total, 2, 'a second connection after two requests');
  assert.equal(s.upstream_cx_max_requests, 1);
  assert.equal(maxrq.connections, 2);

  assert.equal((await request(h.port('l'), { path: '/aged' })).status, 200);
  s = await statsWhen(admin, 'aged', 'the aged connection closed', (x) => x.upstream_cx_destroy === 1);
  assert.equal(s.upstream_cx_max_duration_reached, 1);
  assert.equal(s.upstream_cx_destroy_local, 1);
  assert.equal(s.upstream_cx_idle_timeout, 0);
});

test('HTTP/1.1: a request waiting for a connection is pending; one cancelled while waiting counts upstream_rq_cancelled', async (t) => {
  const held: http.ServerResponse[] = [];
  const up = await startUpstream('slow', (_req, res) => {
    held.push(res);
    return true;
  });
  const h = await startTestRuntime(t, [up]);
  t.after(() => {
    for (const r of held) r.destroy();
  });
  await configure(h, {
    clusters: [staticCluster('slow', [up.port], { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 10 }] } })],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'slow' } }]))],
  });
  const admin = await adminPort(t, h);
  const first = request(h.port('l'), { path: '/first' });
  first.catch(() => undefined);
  await waitFor('the first request upstream', () => (held.length === 1 ? true : undefined), { timeoutMs: 10_000, intervalMs: 10 });
  // The second waits for the one connection; its client gives up.
  const agent = new http.Agent();
  const second = http.get({ port: h.port('l'), host: '127.0.0.1', path: '/second', agent });
  second.on('error', () => undefined);
  let s = await statsWhen(admin, 'slow', 'the second request pending', (x) => x.upstream_rq_pending_active === 1);
  assert.equal(s.upstream_rq_pending_total, 2, 'each request that found no ready connection waited (the first too)');
  second.destroy();
  s = await statsWhen(admin, 'slow', 'the pending request cancelled', (x) => x.upstream_rq_pending_active === 0);
  assert.equal(s.upstream_rq_cancelled, 1);
  held[0].end('done');
  assert.equal((await first).status, 200);
  agent.destroy();
});

test('connect timeouts: an upstream that never completes the TLS handshake (HTTP/1.1, HTTP/2, TCP)', async (t) => {
  const port = await silentServer(t);
  const h = await startTestRuntime(t);
  const tls = { transport_socket: UPSTREAM_TLS, connect_timeout: '0.2s' };
  await configure(h, {
    clusters: [
      staticCluster('h1', [port], tls),
      staticCluster('h2', [port], { ...tls, ...protocolOptions({ explicit_http_config: { http2_protocol_options: {} } }) }),
      staticCluster('tcp', [port], tls),
    ],
    listeners: [
      httpListener('l', routeConfig('r', [{ match: { prefix: '/h2' }, route: { cluster: 'h2', retry_policy: { num_retries: 0 } } }, { match: { prefix: '/' }, route: { cluster: 'h1', retry_policy: { num_retries: 0 } } }])),
      { name: 't', address: addr(0), filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: 't', cluster: 'tcp' } }] }] },
    ],
  });
  const admin = await adminPort(t, h);
  assert.equal((await request(h.port('l'), { path: '/h1' })).status, 503);
  assert.equal((await request(h.port('l'), { path: '/h2' })).status, 503);
  const c = net.connect(h.port('t'), '127.0.0.1');
  c.on('error', () => undefined);
  await new Promise((r) => c.once('close', r));
  for (const name of ['h1', 'h2', 'tcp']) {
    const s = await statsWhen(admin, name, `${name}: the connect timeout counted`, (x) => x.upstream_cx_connect_timeout >= 1);
    assert.equal(s.upstream_cx_connect_timeout, 1, name);
    assert.equal(s.upstream_cx_connect_fail, 1, `${name}: a timeout is a connect failure too, counted once`);
    assert.equal(s.upstream_cx_total, 1, `${name}: the failed attempt is a connection, as Envoy counts them at creation`);
  }
  // The request that waited for the failed connection (Istio's circuit breaking task reads it beside pending_overflow).
  assert.equal((await clusterStats(admin, 'h1')).upstream_rq_pending_failure_eject, 1);
  assert.equal((await clusterStats(admin, 'h2')).upstream_rq_pending_failure_eject, 1);
  assert.equal((await clusterStats(admin, 'tcp')).upstream_rq_pending_failure_eject, 0);
});

test('TLS clusters count ssl.handshake, ssl.fail_verify_san, ssl.fail_verify_error and ssl.connection_error (HTTP/1.1, HTTP/2, TCP); a plaintext cluster has no ssl.*', async (t) => {
  const pki = makePki();
  const other = makePki('Other CA');
  t.after(() => (pki.cleanup(), other.cleanup()));
  const leaf = pki.leaf('upstream', ['DNS:upstream.test']);
  // One TLS port serves HTTP/1.1, HTTP/2 (by ALPN) and raw TCP (no ALPN: echo).
  const h2 = http2.createSecureServer({ ...leaf, allowHTTP1: true }, (_req, res) => res.end('ok'));
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ ...leaf, ALPNProtocols: ['h2', 'http/1.1'] }, (s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    if (s.alpnProtocol) h2.emit('secureConnection', s);
    else s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const plain = http.createServer((_req, res) => res.end('plain'));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    plain.closeAllConnections();
    return Promise.all([new Promise((r) => server.close(r)), new Promise((r) => plain.close(r))]);
  });
  const port = (server.address() as AddressInfo).port;
  const upstreamTls = (ca: string, san: string) => ({
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: 'upstream.test',
        common_tls_context: { validation_context: { trusted_ca: { inline_string: ca }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: san } }] } },
      },
    },
  });
  const good = upstreamTls(pki.ca, 'upstream.test');
  const h2opts = protocolOptions({ explicit_http_config: { http2_protocol_options: {} } });
  const h = await startTestRuntime(t);
  const routes = ['h1', 'h1san', 'h1ca', 'h1err', 'h2', 'h2san', 'plain'].map((c) => ({ match: { path: `/${c}` }, route: { cluster: c, retry_policy: { num_retries: 0 } } }));
  const tcpListener = (name: string) => ({ name, address: addr(0), filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: name } }] }] });
  await configure(h, {
    clusters: [
      staticCluster('h1', [port], good),
      staticCluster('h1san', [port], upstreamTls(pki.ca, 'other.test')),
      staticCluster('h1ca', [port], upstreamTls(other.ca, 'upstream.test')),
      // TLS to a plaintext HTTP server: OpenSSL fails the handshake (wrong version number).
      staticCluster('h1err', [(plain.address() as AddressInfo).port], good),
      staticCluster('h2', [port], { ...good, ...h2opts }),
      staticCluster('h2san', [port], { ...upstreamTls(pki.ca, 'other.test'), ...h2opts }),
      staticCluster('tcp', [port], good),
      staticCluster('tcpsan', [port], upstreamTls(pki.ca, 'other.test')),
      staticCluster('plain', [(plain.address() as AddressInfo).port]),
    ],
    listeners: [httpListener('l', routeConfig('r', routes)), tcpListener('tcp'), tcpListener('tcpsan')],
  });
  const admin = await adminPort(t, h);
  for (const [path, status] of [['/h1', 200], ['/h1', 200], ['/h1san', 503], ['/h1ca', 503], ['/h1err', 503], ['/h2', 200], ['/h2san', 503], ['/plain', 200]] as const) {
    assert.equal((await request(h.port('l'), { path })).status, status, path);
  }
  const tcp = async (listener: string): Promise<string> => {
    const c = net.connect(h.port(listener), '127.0.0.1');
    c.on('error', () => undefined);
    let got = '';
    c.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'hi') c.end();
    });
    c.write('hi');
    await new Promise((r) => c.once('close', r));
    return got;
  };
  assert.equal(await tcp('tcp'), 'hi');
  assert.equal(await tcp('tcpsan'), '');
  const ssl = async (cluster: string, what: string, ok: (s: Record<string, number>) => boolean) => {
    const s = await statsWhen(admin, cluster, `${cluster}: ${what}`, ok);
    return [s['ssl.handshake'], s['ssl.fail_verify_san'], s['ssl.fail_verify_error'], s['ssl.connection_error']];
  };
  // [handshake, fail_verify_san, fail_verify_error, connection_error]
  assert.deepEqual(await ssl('h1', 'one handshake (the second request reuses the connection)', (s) => s['ssl.handshake'] >= 1), [1, 0, 0, 0]);
  assert.deepEqual(await ssl('h1san', 'a SAN failure', (s) => s['ssl.fail_verify_san'] >= 1), [0, 1, 0, 0]);
  assert.deepEqual(await ssl('h1ca', 'a CA failure', (s) => s['ssl.fail_verify_error'] >= 1), [0, 0, 1, 0]);
  assert.deepEqual(await ssl('h1err', 'a TLS error', (s) => s['ssl.connection_error'] >= 1), [0, 0, 0, 1]);
  assert.deepEqual(await ssl('h2', 'a handshake', (s) => s['ssl.handshake'] >= 1), [1, 0, 0, 0]);
  assert.deepEqual(await ssl('h2san', 'a SAN failure', (s) => s['ssl.fail_verify_san'] >= 1), [0, 1, 0, 0]);
  assert.deepEqual(await ssl('tcp', 'a handshake', (s) => s['ssl.handshake'] >= 1), [1, 0, 0, 0]);
  assert.deepEqual(await ssl('tcpsan', 'a SAN failure', (s) => s['ssl.fail_verify_san'] >= 1), [0, 1, 0, 0]);
  const h1 = await clusterStats(admin, 'h1');
  for (const name of ['session_reused', 'no_certificate', 'fail_verify_no_cert']) assert.equal(h1[`ssl.${name}`], 0, name);
  assert.deepEqual(Object.keys(await clusterStats(admin, 'plain')).filter((k) => k.startsWith('ssl.')), []);
});

test('HTTP/2: http2_total and bytes at close; max_connection_duration and idle_timeout count upstream_cx_max_duration_reached and upstream_cx_idle_timeout', async (t) => {
  const server = http2.createServer((_req, res) => res.end('h2 ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  t.after(() => {
    for (const s of sessions) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as AddressInfo).port;
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [
      staticCluster('h2', [port], protocolOptions({ explicit_http_config: { http2_protocol_options: {} }, common_http_protocol_options: { max_connection_duration: '0.1s' } })),
      staticCluster('h2idle', [port], protocolOptions({ explicit_http_config: { http2_protocol_options: {} }, common_http_protocol_options: { idle_timeout: '0.1s' } })),
    ],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/idle' }, route: { cluster: 'h2idle' } }, { match: { prefix: '/' }, route: { cluster: 'h2' } }]))],
  });
  const admin = await adminPort(t, h);
  const r = await request(h.port('l'), { path: '/' });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'h2 ok');
  const s = await statsWhen(admin, 'h2', 'the aged HTTP/2 connection closed', (x) => x.upstream_cx_destroy === 1);
  assert.equal(s.upstream_cx_http2_total, 1);
  assert.equal(s.upstream_cx_http1_total, 0);
  assert.equal(s.upstream_cx_max_duration_reached, 1);
  assert.ok(s.upstream_cx_tx_bytes_total > 24, `the connection preface and request counted: ${s.upstream_cx_tx_bytes_total}`);
  assert.ok(s.upstream_cx_rx_bytes_total > 0, `the response counted: ${s.upstream_cx_rx_bytes_total}`);
  assert.equal(s.upstream_cx_idle_timeout, 0);
  assert.equal(histogramCount(h, 'cluster.h2.upstream_cx_connect_ms'), 1);
  assert.equal(histogramCount(h, 'cluster.h2.upstream_rq_time'), 1);
  await waitFor('upstream_cx_length_ms of the closed HTTP/2 connection', () => (histogramCount(h, 'cluster.h2.upstream_cx_length_ms') === 1 ? true : undefined));

  assert.equal((await request(h.port('l'), { path: '/idle' })).status, 200);
  const idle = await statsWhen(admin, 'h2idle', 'the idle HTTP/2 connection closed', (x) => x.upstream_cx_destroy === 1);
  assert.equal(idle.upstream_cx_idle_timeout, 1);
  assert.equal(idle.upstream_cx_max_duration_reached, 0);
});

test('tcp_proxy: upstream connections count destroy (remote, local) and bytes, also while open', async (t) => {
  // Echoes; 'rst' makes it reset the connection (the upstream ends it).
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', (d) => (d.toString() === 'rst' ? s.resetAndDestroy() : s.write(d)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('tcp', [(server.address() as AddressInfo).port])],
    listeners: [{ name: 't', address: addr(0), filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: 't', cluster: 'tcp', idle_timeout: '0.2s' } }] }] }],
  });
  const admin = await adminPort(t, h);
  const roundTrip = async (payload: string, then: 'rst' | 'idle'): Promise<void> => {
    const c = net.connect(h.port('t'), '127.0.0.1');
    c.on('error', () => undefined);
    c.write(payload);
    const got = await new Promise<string>((r) => c.once('data', (d) => r(d.toString())));
    assert.equal(got, payload);
    if (then === 'rst') c.write('rst');
    await new Promise((r) => (c.destroyed ? r(undefined) : c.once('close', r)));
  };
  await roundTrip('hi', 'rst');
  let s = await statsWhen(admin, 'tcp', 'the first upstream connection closed', (x) => x.upstream_cx_destroy === 1);
  assert.equal(s.upstream_cx_destroy_remote, 1, 'the upstream reset it');
  assert.equal(s.upstream_cx_destroy_local, 0);
  assert.equal(s.upstream_cx_tx_bytes_total, 5);
  assert.equal(s.upstream_cx_rx_bytes_total, 2);
  await roundTrip('hello', 'idle');
  s = await statsWhen(admin, 'tcp', 'the second upstream connection closed', (x) => x.upstream_cx_destroy === 2);
  assert.equal(s.upstream_cx_destroy_local, 1, 'the idle timeout: the proxy closed the upstream');
  assert.equal(s.upstream_cx_tx_bytes_total, 10);
  assert.equal(s.upstream_cx_rx_bytes_total, 7);
  assert.equal(s.upstream_cx_active, 0);
  assert.equal(histogramCount(h, 'cluster.tcp.upstream_cx_connect_ms'), 2);
  assert.equal(histogramCount(h, 'cluster.tcp.upstream_cx_length_ms'), 2);
  // Bytes count while the connection is open, as Envoy's, and only once when it closes.
  const open = net.connect(h.port('t'), '127.0.0.1');
  open.on('error', () => undefined);
  open.write('live');
  await new Promise((r) => open.once('data', r));
  s = await clusterStats(admin, 'tcp');
  assert.equal(s.upstream_cx_active, 1);
  assert.equal(s.upstream_cx_tx_bytes_total, 14, 'the open connection\'s request bytes');
  assert.equal(s.upstream_cx_rx_bytes_total, 11, 'the open connection\'s response bytes');
  open.destroy();
  s = await statsWhen(admin, 'tcp', 'the third upstream connection closed', (x) => x.upstream_cx_destroy === 3);
  assert.equal(s.upstream_cx_tx_bytes_total, 14);
  assert.equal(s.upstream_cx_rx_bytes_total, 11);
});

test('upgrades: a WebSocket tunnel is an upstream connection (total, active while open, destroy and bytes once closed)', async (t) => {
  const server = http.createServer();
  server.on('upgrade', (_req, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
    socket.on('data', (d) => socket.write(d));
    socket.on('end', () => socket.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('ws', [(server.address() as AddressInfo).port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'ws' } }]), { upgrade_configs: [{ upgrade_type: 'websocket' }] })],
  });
  const admin = await adminPort(t, h);
  const c = net.connect(h.port('l'), '127.0.0.1');
  c.write('GET /chat HTTP/1.1\r\nhost: ws.test\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n');
  let got = '';
  c.on('data', (d) => (got += d.toString()));
  await waitFor('the 101 through the proxy', () => (got.includes('101') ? true : undefined));
  c.write('hello');
  await waitFor('the echo', () => (got.endsWith('hello') ? true : undefined));
  const open = await clusterStats(admin, 'ws');
  assert.equal(open.upstream_cx_total, 1);
  assert.equal(open.upstream_cx_active, 1);
  c.end();
  const s = await statsWhen(admin, 'ws', 'the tunnel closed', (x) => x.upstream_cx_destroy === 1);
  assert.equal(s.upstream_cx_active, 0);
  assert.ok(s.upstream_cx_tx_bytes_total > 5 && s.upstream_cx_rx_bytes_total > 5, `bytes counted: ${s.upstream_cx_tx_bytes_total} / ${s.upstream_cx_rx_bytes_total}`);
  assert.equal(histogramCount(h, 'cluster.ws.upstream_cx_connect_ms'), 1);
  assert.equal(histogramCount(h, 'cluster.ws.upstream_cx_length_ms'), 1);
});
