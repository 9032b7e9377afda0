// Envoy's per-host stats in admin /clusters (text and ?format=json), counted where Envoy counts
// them: cx_total / cx_active / cx_connect_fail by the pools, rq_total once a request is on a
// connection (Envoy's attachStreamToClient), rq_active by attempt,
// rq_success for a final non-5xx response (gRPC: by its grpc-status), rq_error for a 5xx, a retried
// response or reset, a request the router gave up on (router.cc chargeUpstreamCode,
// chargeUpstreamAbort, maybeRetryReset), rq_timeout for per-try and route timeouts; then the host's
// attributes in Envoy's order (clusters_handler.cc) and its outlier detection success rate.
// Through a real `rig proxy` from a static bootstrap.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { listenLocal } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const H2 = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } };

async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listenLocal(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function get(port: number, p: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  await res.arrayBuffer();
  return res.status;
}

/** A gRPC call through the proxy over h2c: the grpc-status of its trailers. */
function grpcCall(session: http2.ClientHttp2Session, p: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': 'POST', ':path': p, 'content-type': 'application/grpc', te: 'trailers' });
    let status: string | undefined;
    s.on('trailers', (t) => (status = String(t['grpc-status'])));
    s.on('error', reject);
    s.resume();
    s.on('close', () => resolve(status));
    s.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

test('/clusters shows Envoy\'s per-host stats, counted where Envoy counts them', async (t) => {
  const held = new Set<http.ServerResponse>();
  const app = http.createServer((req, res) => {
    if (req.url!.startsWith('/slow')) held.add(res); // never answered
    else if (req.url!.startsWith('/fail')) res.writeHead(503).end('down');
    else res.writeHead(200).end('ok');
  });
  const appPort = await listenLocal(app);
  t.after(() => {
    for (const res of held) res.destroy();
    app.closeAllConnections();
  });
  t.after(() => new Promise<void>((r) => app.close(() => r())));
  const grpc = http2.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.addTrailers({ 'grpc-status': req.url.startsWith('/grpc-fail') ? '14' : '0' });
      res.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  const grpcPort = await listenLocal(grpc);
  t.after(() => new Promise<void>((r) => grpc.close(() => r())));
  const deadPort = await closedPort();

  const cluster = (name: string, port: number, extra: Record<string, unknown> = {}) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ locality: { region: 'r1', zone: 'z1', sub_zone: 's1' }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } }, hostname: `${name}.local` }, load_balancing_weight: 3 }] }] },
    ...extra,
  });
  const noRetry = { num_retries: 0 };
  const routes = [
    { match: { prefix: '/ok' }, route: { cluster: 'app', retry_policy: noRetry } },
    { match: { prefix: '/fail' }, route: { cluster: 'app', retry_policy: noRetry } },
    { match: { prefix: '/slow' }, route: { cluster: 'slow', timeout: '0.2s', retry_policy: noRetry } },
    { match: { prefix: '/refused' }, route: { cluster: 'dead', retry_policy: noRetry } },
    { match: { prefix: '/retry-fail' }, route: { cluster: 'retry', prefix_rewrite: '/fail', retry_policy: { retry_on: '5xx', num_retries: 1, retry_back_off: { base_interval: '0.001s' } } } },
    { match: { prefix: '/retry-slow' }, route: { cluster: 'pertry', prefix_rewrite: '/slow', timeout: '10s', retry_policy: { retry_on: 'reset', num_retries: 1, per_try_timeout: '0.1s', retry_back_off: { base_interval: '0.001s' } } } },
    { match: { prefix: '/grpc' }, route: { cluster: 'grpc', retry_policy: noRetry } },
    { match: { prefix: '/od' }, route: { cluster: 'od', prefix_rewrite: '/ok', retry_policy: noRetry } },
    { match: { prefix: '/cbr-slow' }, route: { cluster: 'cb-requests', prefix_rewrite: '/slow', timeout: '0.3s', retry_policy: noRetry } },
    { match: { prefix: '/cbr' }, route: { cluster: 'cb-requests', prefix_rewrite: '/ok', retry_policy: noRetry } },
    { match: { prefix: '/cbp-slow' }, route: { cluster: 'cb-pending', prefix_rewrite: '/slow', timeout: '0.3s', retry_policy: noRetry } },
    { match: { prefix: '/cbp' }, route: { cluster: 'cb-pending', prefix_rewrite: '/ok', retry_policy: noRetry } },
  ];
  const boot = {
    static_resources: {
      listeners: [
        {
          name: 'http',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'ingress', route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes }] }, http_filters: [ROUTER] } }] }],
        },
      ],
      clusters: [
        cluster('app', appPort),
        cluster('slow', appPort),
        cluster('dead', deadPort),
        cluster('retry', appPort),
        cluster('pertry', appPort),
        cluster('grpc', grpcPort, { typed_extension_protocol_options: H2 }),
        cluster('od', appPort, { outlier_detection: { interval: '0.5s', success_rate_minimum_hosts: 1, success_rate_request_volume: 2, enforcing_success_rate: 0 } }),
        cluster('cb-requests', appPort, { circuit_breakers: { thresholds: [{ max_requests: 1 }] } }),
        cluster('cb-pending', appPort, { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1 }] } }),
      ],
    },
  };
  const file = path.join(tempDir(t, 'rig-host-stats-'), 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(boot));
  const { ports } = await startRigProxyFromFile(t, file);
  const port = ports.listeners.http;

  for (let i = 0; i < 3; i++) assert.equal(await get(port, '/ok'), 200);
  assert.equal(await get(port, '/fail'), 503);
  assert.equal(await get(port, '/slow'), 504);
  assert.equal(await get(port, '/refused'), 503);
  assert.equal(await get(port, '/retry-fail'), 503);
  assert.equal(await get(port, '/retry-slow'), 504);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.close());
  assert.equal(await grpcCall(session, '/grpc-ok'), '0');
  assert.equal(await grpcCall(session, '/grpc-fail'), '14');
  // Circuit breakers: max_requests 1, a second request while one is in flight overflows; max_connections 1
  // and max_pending_requests 1, the second waits for the busy connection (Envoy's pending stream,
  // answered once the first times out and its connection closes), the third overflows.
  const pendingFilter = encodeURIComponent('^cluster\\.cb-pending\\.upstream_rq_pending_active$');
  const pendingActive = async () => Number(/: (\d+)/.exec(await (await fetch(`http://127.0.0.1:${ports.admin}/stats?filter=${pendingFilter}`)).text())?.[1]);
  for (const p of ['/cbr', '/cbp']) {
    const heldBefore = held.size;
    const slow = get(port, `${p}-slow`);
    await waitFor('the slow request upstream', async () => held.size > heldBefore || undefined);
    const waiting = p === '/cbp' ? get(port, p) : undefined;
    if (waiting) await waitFor('a request pending', async () => (await pendingActive()) === 1 || undefined);
    assert.equal(await get(port, p), 503);
    assert.equal(await slow, 504);
    if (waiting) assert.equal(await waiting, 200);
  }

  const clustersText = async () => (await (await fetch(`http://127.0.0.1:${ports.admin}/clusters`)).text()).split('\n');
  /** A host's /clusters text lines, "name::value", in order. */
  const hostLines = (lines: string[], name: string, p: number) => lines.filter((l) => l.startsWith(`${name}::127.0.0.1:${p}::`)).map((l) => l.slice(`${name}::127.0.0.1:${p}::`.length));
  const statsOf = (lines: string[], name: string, p: number) => Object.fromEntries(hostLines(lines, name, p).filter((l) => /^(cx|rq)_/.test(l)).map((l) => l.split('::')).map(([k, v]) => [k, Number(v)]));

  // The route timeout and per-try timeouts close their connections: wait until none is active.
  const text = await waitFor('no active connection or request', async () => {
    const lines = await clustersText();
    const busy = ['slow', 'pertry', 'cb-requests', 'cb-pending'].some((c) => statsOf(lines, c, appPort).cx_active !== 0 || statsOf(lines, c, appPort).rq_active !== 0);
    return busy ? undefined : lines;
  });

  // Envoy's order: the stats by name, then the host's attributes.
  assert.deepEqual(hostLines(text, 'app', appPort).map((l) => l.split('::')[0]), ['cx_active', 'cx_connect_fail', 'cx_total', 'rq_active', 'rq_error', 'rq_success', 'rq_timeout', 'rq_total', 'hostname', 'health_flags', 'weight', 'region', 'zone', 'sub_zone', 'canary', 'priority', 'success_rate', 'local_origin_success_rate']);
  assert.deepEqual(hostLines(text, 'app', appPort).slice(8), ['hostname::app.local', 'health_flags::healthy', 'weight::3', 'region::r1', 'zone::z1', 'sub_zone::s1', 'canary::false', 'priority::0', 'success_rate::-1', 'local_origin_success_rate::-1']);

  const app1 = statsOf(text, 'app', appPort);
  assert.ok(app1.cx_total >= 1, 'the app host has connections');
  assert.deepEqual({ ...app1, cx_total: 0, cx_active: 0 }, { cx_active: 0, cx_connect_fail: 0, cx_total: 0, rq_active: 0, rq_error: 1, rq_success: 3, rq_timeout: 0, rq_total: 4 }, 'app: 3 × 200, one 503');
  // The route timeout: a timeout and an error; its connection closed.
  assert.deepEqual(statsOf(text, 'slow', appPort), { cx_active: 0, cx_connect_fail: 0, cx_total: 1, rq_active: 0, rq_error: 1, rq_success: 0, rq_timeout: 1, rq_total: 1 });
  // A refused connection: a failed connection counts in cx_total and cx_connect_fail; the request is
  // an error, but no rq_total: Envoy's pools count a stream once it is on a connection.
  assert.deepEqual(statsOf(text, 'dead', deadPort), { cx_active: 0, cx_connect_fail: 1, cx_total: 1, rq_active: 0, rq_error: 1, rq_success: 0, rq_timeout: 0, rq_total: 0 });
  // A retried 503 and the final one: two errors.
  const retry = statsOf(text, 'retry', appPort);
  assert.deepEqual([retry.rq_total, retry.rq_error, retry.rq_success, retry.rq_timeout], [2, 2, 0, 0]);
  // Two per-try timeouts, the first retried (maybeRetryReset), the last given up on: two timeouts, two errors.
  const pertry = statsOf(text, 'pertry', appPort);
  assert.deepEqual([pertry.rq_total, pertry.rq_error, pertry.rq_success, pertry.rq_timeout, pertry.cx_total], [2, 2, 0, 2, 2]);
  // Overflow on max_requests: Envoy's pool refuses the stream as it attaches it to the host's
  // connection, and the router charges that host an error (no rq_total); on max_pending_requests
  // it is refused before any host. Each host also has its timed-out request; cb-pending's waiting
  // request went on a second connection (the timed-out request's closed) and succeeded.
  assert.deepEqual(statsOf(text, 'cb-requests', appPort), { cx_active: 0, cx_connect_fail: 0, cx_total: 1, rq_active: 0, rq_error: 2, rq_success: 0, rq_timeout: 1, rq_total: 1 });
  assert.deepEqual(statsOf(text, 'cb-pending', appPort), { cx_active: 0, cx_connect_fail: 0, cx_total: 2, rq_active: 0, rq_error: 1, rq_success: 1, rq_timeout: 1, rq_total: 2 });
  // gRPC: both HTTP 200; grpc-status 0 is a success, 14 (UNAVAILABLE → 503) an error.
  const g = statsOf(text, 'grpc', grpcPort);
  assert.deepEqual([g.rq_total, g.rq_success, g.rq_error, g.cx_total, g.cx_active], [2, 1, 1, 1, 1]);

  // JSON: admin.v3.HostStatus, stats as Envoy's proto3 JSON writes SimpleMetric (uint64 as a string, zero left out).
  const json = (await (await fetch(`http://127.0.0.1:${ports.admin}/clusters?format=json`)).json()) as { cluster_statuses: { name: string; host_statuses: Record<string, unknown>[] }[] };
  const dead = json.cluster_statuses.find((c) => c.name === 'dead')!.host_statuses[0];
  assert.deepEqual(dead.stats, [
    { value: '1', name: 'cx_connect_fail' },
    { value: '1', name: 'cx_total' },
    { value: '1', name: 'rq_error' },
    { name: 'rq_success' },
    { name: 'rq_timeout' },
    { name: 'rq_total' },
    { type: 'GAUGE', name: 'cx_active' },
    { type: 'GAUGE', name: 'rq_active' },
  ]);
  assert.equal(dead.hostname, 'dead.local');
  // HostHealthStatus as proto3 JSON: the flags that are set only (no false booleans).
  assert.deepEqual(dead.health_status, { eds_health_status: 'HEALTHY' });
  assert.equal(dead.success_rate, undefined, 'no outlier detection: no success rate');

  // Outlier detection: the host's success rate over an interval with enough requests (100 here),
  // −1 before; requests go on until an interval had them.
  const od = await waitFor('the od host success rate', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await get(port, '/od'), 200);
    const rate = hostLines(await clustersText(), 'od', appPort).find((l) => l.startsWith('success_rate::'));
    return rate === 'success_rate::100' ? rate : undefined;
  });
  assert.equal(od, 'success_rate::100');
  const odJson = (await (await fetch(`http://127.0.0.1:${ports.admin}/clusters?format=json`)).json()) as typeof json;
  const odHost = odJson.cluster_statuses.find((c) => c.name === 'od')!.host_statuses[0];
  assert.ok(odHost.success_rate === undefined || (odHost.success_rate as { value: number }).value === 100, 'JSON success_rate is { value } when computed');
});

/** Sends `text` through a TCP listener, half-closes, and reads until the other side ends. */
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

/** A raw HTTP/1.1 CONNECT through the proxy, then `text` both ways: what came back after the 200. */
function connectThrough(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => {
      out += d;
      const i = out.indexOf('\r\n\r\n');
      if (i >= 0 && out.slice(i + 4) === text) {
        s.destroy();
        resolve(out.slice(i + 4));
      }
    });
    s.on('error', reject);
    s.write(`CONNECT echo.local:1 HTTP/1.1\r\nhost: echo.local:1\r\n\r\n${text}`);
  });
}

test('/clusters charges hosts for tcp_proxy connections, tunnels (HTTP/1.1 and pooled HTTP/2), CONNECT and mirrors as Envoy\'s pools and router do', async (t) => {
  const echo = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  const echoPort = await listenLocal(echo, t);
  const dial = () => net.connect(echoPort, '127.0.0.1');
  // CONNECT proxies, HTTP/1.1 and HTTP/2, to the echo server.
  const h1 = http.createServer();
  h1.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.on('error', () => undefined);
    const up = dial();
    up.once('connect', () => {
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
      socket.pipe(up).pipe(socket);
    });
  });
  const h1Port = await listenLocal(h1, t);
  t.after(() => h1.closeAllConnections());
  const h2 = http2.createServer();
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s) => h2Sessions.add(s));
  h2.on('stream', (stream) => {
    stream.on('error', () => undefined);
    const up = dial();
    up.once('connect', () => {
      stream.respond({ ':status': 200 });
      stream.pipe(up).pipe(stream);
    });
  });
  const h2Port = await listenLocal(h2 as unknown as net.Server, t);
  t.after(() => h2Sessions.forEach((s) => s.destroy()));
  const app = http.createServer((req, res) => {
    req.resume();
    res.writeHead(req.url!.startsWith('/fail') ? 503 : 200).end('ok');
  });
  const appPort = await listenLocal(app, t);
  t.after(() => app.closeAllConnections());
  const deadPort = await closedPort();

  const cluster = (name: string, port: number, extra: Record<string, unknown> = {}) => ({ name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] }, ...extra });
  const listener = (name: string, filter: Record<string, unknown>) => ({ name, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [filter] }] });
  const tcp = (name: string, cluster: string, extra: Record<string, unknown> = {}) => listener(name, { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: name, cluster, ...extra } });
  const tunnel = { tunneling_config: { hostname: 'echo.local:1' } };
  const routes = [
    { match: { connect_matcher: {} }, route: { cluster: 'connect', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } },
    { match: { prefix: '/' }, route: { cluster: 'app', retry_policy: { num_retries: 0 }, request_mirror_policies: [{ cluster: 'shadow' }] } },
  ];
  const boot = {
    static_resources: {
      listeners: [
        tcp('tcp', 'tcp'),
        tcp('tcp-dead', 'tcp-dead'),
        tcp('tunnel-h1', 'tunnel-h1', tunnel),
        tcp('tunnel-h2', 'tunnel-h2', tunnel),
        listener('http', { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'ingress', route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes }] }, http_filters: [ROUTER] } }),
      ],
      clusters: [cluster('tcp', echoPort), cluster('tcp-dead', deadPort), cluster('tunnel-h1', h1Port), cluster('tunnel-h2', h2Port, { typed_extension_protocol_options: H2 }), cluster('connect', echoPort), cluster('app', appPort), cluster('shadow', appPort)],
    },
  };
  const file = path.join(tempDir(t, 'rig-host-stats-tcp-'), 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(boot));
  const { ports } = await startRigProxyFromFile(t, file);
  const l = ports.listeners;

  assert.equal(await echoThrough(l.tcp, 'tcp'), 'tcp');
  assert.equal(await echoThrough(l['tcp-dead'], 'nobody'), '');
  assert.equal(await echoThrough(l['tunnel-h1'], 'over h1'), 'over h1');
  // Two tunnels at once over HTTP/2: two streams of one connection.
  const a = net.connect(l['tunnel-h2'], '127.0.0.1');
  t.after(() => a.destroy());
  await new Promise((r) => a.once('data', r).write('first'));
  assert.equal(await echoThrough(l['tunnel-h2'], 'second'), 'second');
  a.end();
  await new Promise((r) => a.once('end', r).resume());
  assert.equal(await connectThrough(l.http, 'over connect'), 'over connect');
  assert.equal(await get(l.http, '/ok'), 200);
  assert.equal(await get(l.http, '/fail'), 503);

  const statsOf = (lines: string[], name: string, p: number) => Object.fromEntries(lines.filter((x) => x.startsWith(`${name}::127.0.0.1:${p}::`) && /::(cx|rq)_/.test(x)).map((x) => x.split('::').slice(2)).map(([k, v]) => [k, Number(v)]));
  const clusters = async () => (await (await fetch(`http://127.0.0.1:${ports.admin}/clusters`)).text()).split('\n');
  // Mirrors are fire and forget: wait until both answered and every relayed connection closed.
  const text = await waitFor('mirrors answered, connections closed', async () => {
    const lines = await clusters();
    const shadow = statsOf(lines, 'shadow', appPort);
    const open = ['tcp', 'tunnel-h1', 'connect'].some((c) => statsOf(lines, c, c === 'tunnel-h1' ? h1Port : echoPort).cx_active !== 0);
    return shadow.rq_success + shadow.rq_error === 2 && !open ? lines : undefined;
  });
  // tcp_proxy: a connection and its one stream (Envoy's TCP pool attaches it), or a failed connection and none.
  assert.deepEqual(statsOf(text, 'tcp', echoPort), { cx_active: 0, cx_connect_fail: 0, cx_total: 1, rq_active: 0, rq_error: 0, rq_success: 0, rq_timeout: 0, rq_total: 1 });
  assert.deepEqual(statsOf(text, 'tcp-dead', deadPort), { cx_active: 0, cx_connect_fail: 1, cx_total: 1, rq_active: 0, rq_error: 0, rq_success: 0, rq_timeout: 0, rq_total: 0 });
  // A tunnel over HTTP/1.1: a connection and its CONNECT.
  assert.deepEqual(statsOf(text, 'tunnel-h1', h1Port), { cx_active: 0, cx_connect_fail: 0, cx_total: 1, rq_active: 0, rq_error: 0, rq_success: 0, rq_timeout: 0, rq_total: 1 });
  // Over HTTP/2: one pooled connection (still open), two streams.
  assert.deepEqual(statsOf(text, 'tunnel-h2', h2Port), { cx_active: 1, cx_connect_fail: 0, cx_total: 1, rq_active: 0, rq_error: 0, rq_success: 0, rq_timeout: 0, rq_total: 2 });
  // The connection manager's CONNECT: its connection and stream.
  assert.deepEqual(statsOf(text, 'connect', echoPort), { cx_active: 0, cx_connect_fail: 0, cx_total: 1, rq_active: 0, rq_error: 0, rq_success: 0, rq_timeout: 0, rq_total: 1 });
  // The shadows of /ok and /fail: their host's requests, a success and an error, as the primaries.
  const shadow = statsOf(text, 'shadow', appPort);
  assert.deepEqual([shadow.rq_total, shadow.rq_success, shadow.rq_error, shadow.rq_active], [2, 1, 1, 0]);
  assert.deepEqual([statsOf(text, 'app', appPort).rq_total, statsOf(text, 'app', appPort).rq_success, statsOf(text, 'app', appPort).rq_error], [2, 1, 1]);
});
