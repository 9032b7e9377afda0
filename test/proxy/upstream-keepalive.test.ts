// Cluster upstream_connection_options.tcp_keepalive (Istio's connectionPool.tcp.tcpKeepalive):
// every upstream socket of the cluster gets SO_KEEPALIVE with the given idle time, interval and
// probe count (a field left out keeps the kernel's default). Checked on the proxy's real upstream
// sockets: /proc/net/tcp shows their keepalive timer, the native addon reads the options back.
// Active health check connections (HTTP/1.1, HTTP/2, TCP, gRPC) are the cluster's too.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { test, type TestContext } from 'node:test';
import { HCM, ROUTER, addr, configure, request, routeConfig, startTestRuntime, staticCluster } from './harness.ts';
import { makePki } from './certs.ts';
import { listenLocal } from '../helpers/listen.ts';
import { waitFor } from '../helpers/wait.ts';
import { nativeAddon } from '../../src/proxy/native-addon.ts';
import { setTcpKeepalive } from '../../src/proxy/network/tcp-keepalive.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { compileCluster } from '../../src/proxy/upstream/cluster-config.ts';
import { checkHealthChecks } from '../../src/proxy/upstream/health-check.ts';
import { grpcHealthServer } from '../helpers/grpc-health-h2.ts';

const skip = process.platform !== 'linux' ? 'Linux-only (/proc/net/tcp, TCP_KEEP* options)' : nativeAddon() ? undefined : 'the native addon is not built';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const KEEPALIVE = { upstream_connection_options: { tcp_keepalive: { keepalive_time: 9, keepalive_interval: 3, keepalive_probes: 4 } } };

function kernelDefault(name: string): number {
  return Number(fs.readFileSync(`/proc/sys/net/ipv4/tcp_keepalive_${name}`, 'utf8').trim());
}

/** The timer of the IPv4 loopback connection from `localPort` to `remotePort`: kind (2 = keepalive) and seconds left. */
function tcpTimer(localPort: number, remotePort: number): { kind: number; seconds: number } | undefined {
  const hex = (p: number) => `0100007F:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== hex(localPort) || f[2] !== hex(remotePort)) continue;
    const [kind, when] = f[5].split(':');
    return { kind: parseInt(kind, 16), seconds: parseInt(when, 16) / 100 };
  }
  return undefined;
}

/** Waits for the proxy's socket behind `peer` (an accepted upstream socket) to show its timer. */
async function keepaliveTimer(peer: net.Socket, upstreamPort: number): Promise<{ kind: number; seconds: number }> {
  return waitFor('the upstream connection in /proc/net/tcp', () => {
    const t = tcpTimer(peer.remotePort!, upstreamPort);
    return t && t.kind !== 1 ? t : undefined; // 1: a retransmit timer still running for the last segment.
  });
}

/** The sockets each upstream accepted, by name (destroyed when the test ends): the proxy's side is their peer. */
function upstreamPeers(t: TestContext): { peers: Map<string, net.Socket[]>; track: (name: string) => (s: net.Socket) => void } {
  const peers = new Map<string, net.Socket[]>();
  t.after(() => {
    for (const list of peers.values()) for (const s of list) s.destroy();
  });
  const track = (name: string) => (s: net.Socket) => {
    peers.set(name, [...(peers.get(name) ?? []), s]);
    s.on('error', () => undefined);
  };
  return { peers, track };
}

test('setTcpKeepalive sets the three options on plain and TLS sockets; unset ones keep the kernel default', { skip }, async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const leaf = pki.leaf('server', ['DNS:server']);
  const sockets: net.Socket[] = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  const plainServer = net.createServer((s) => sockets.push(s.on('error', () => undefined)));
  const tlsServer = tls.createServer({ cert: leaf.cert, key: leaf.key }, (s) => sockets.push(s.on('error', () => undefined)));
  const plainPort = await listenLocal(plainServer, t);
  const tlsPort = await listenLocal(tlsServer, t);

  const plain = net.connect(plainPort, '127.0.0.1');
  sockets.push(plain);
  await new Promise((r) => plain.once('connect', r));
  assert.deepEqual(setTcpKeepalive(plain, { time: 9, interval: 3, probes: 4 }), { time: 9, interval: 3, probes: 4 });

  const secure = tls.connect({ port: tlsPort, host: '127.0.0.1', ca: pki.ca, servername: 'server' });
  sockets.push(secure);
  await new Promise((r) => secure.once('secureConnect', r));
  assert.deepEqual(setTcpKeepalive(secure, { time: 11, interval: 0, probes: 0 }), { time: 11, interval: kernelDefault('intvl'), probes: kernelDefault('probes') });
  const timer = await waitFor('keepalive timer', () => {
    const x = tcpTimer(secure.localPort!, tlsPort);
    return x?.kind === 2 ? x : undefined;
  });
  assert.ok(timer.seconds <= 11, `keepalive timer ${timer.seconds}s, set to 11s`);
});

test('the proxy turns keepalive on for HTTP/1.1, HTTP/2 and tcp_proxy upstream connections of a cluster with tcp_keepalive, each with its own settings, and leaves it off without', { skip }, async (t) => {
  const { peers, track } = upstreamPeers(t);
  const h1 = http.createServer((_req, res) => res.end('h1'));
  h1.on('connection', track('h1'));
  const plainH1 = http.createServer((_req, res) => res.end('plain'));
  plainH1.on('connection', track('plain'));
  const h2 = http2.createServer((_req, res) => res.end('h2'));
  h2.on('connection', track('h2'));
  const plainH2 = http2.createServer((_req, res) => res.end('plain h2'));
  plainH2.on('connection', track('plainH2'));
  const echo = net.createServer((s) => s.pipe(s));
  echo.on('connection', track('tcp'));
  const ports = { h1: await listenLocal(h1, t), plain: await listenLocal(plainH1, t), h2: await listenLocal(h2, t), plainH2: await listenLocal(plainH2, t), tcp: await listenLocal(echo, t) };

  const h = await startTestRuntime(t);
  const route = (prefix: string, cluster: string) => ({ match: { prefix }, route: { cluster } });
  await configure(h, {
    clusters: [
      staticCluster('h1', [ports.h1], KEEPALIVE),
      staticCluster('plain', [ports.plain]),
      staticCluster('h2', [ports.h2], { ...KEEPALIVE, http2_protocol_options: {} }),
      staticCluster('plainH2', [ports.plainH2], { http2_protocol_options: {} }),
      staticCluster('tcp', [ports.tcp], KEEPALIVE),
    ],
    listeners: [
      {
        name: 'http',
        address: addr(0),
        filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 'http', route_config: routeConfig('r', [route('/h1', 'h1'), route('/h2', 'h2'), route('/plain-h2', 'plainH2'), route('/', 'plain')]), http_filters: [ROUTER] } }] }],
      },
      { name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: 'tcp', cluster: 'tcp' } }] }] },
    ],
  });
  for (const p of ['/h1', '/h2', '/plain-h2', '/plain']) assert.equal((await request(h.port('http'), { path: p })).status, 200, p);
  const client = net.connect(h.port('tcp'), '127.0.0.1');
  peers.set('client', [client]);
  client.write('ping');
  await new Promise((r) => client.once('data', r));

  for (const name of ['h1', 'h2', 'tcp'] as const) {
    const timer = await keepaliveTimer(peers.get(name)![0], ports[name]);
    assert.equal(timer.kind, 2, `${name}: keepalive timer expected on the proxy's upstream socket, got timer kind ${timer.kind}`);
    assert.ok(timer.seconds <= 9, `${name}: keepalive in ${timer.seconds}s, keepalive_time is 9s`);
  }
  // Without tcp_keepalive, as Envoy: no SO_KEEPALIVE at all (timer kind 0), neither HTTP/1.1 nor h2c.
  for (const name of ['plain', 'plainH2'] as const) {
    const timer = await keepaliveTimer(peers.get(name)![0], ports[name]);
    assert.equal(timer.kind, 0, `${name}: a cluster without tcp_keepalive has no keepalive timer (got kind ${timer.kind}, ${timer.seconds}s)`);
  }
});

test("active health check connections use the cluster's tcp_keepalive (HTTP/1.1, HTTP/2, TCP, gRPC) and have none without it", { skip }, async (t) => {
  const { peers, track } = upstreamPeers(t);
  const h1 = http.createServer((_req, res) => res.end('ok'));
  h1.on('connection', track('h1'));
  const plainH1 = http.createServer((_req, res) => res.end('ok'));
  plainH1.on('connection', track('plain'));
  const h2 = http2.createServer((_req, res) => res.end('ok'));
  h2.on('connection', track('h2'));
  // Never answers the check's payload: the check's connection stays open until its timeout.
  const silent = net.createServer(track('tcp'));
  const grpc = grpcHealthServer();
  grpc.on('connection', track('grpc'));
  const ports = { h1: await listenLocal(h1, t), plain: await listenLocal(plainH1, t), h2: await listenLocal(h2, t), tcp: await listenLocal(silent, t), grpc: await listenLocal(grpc, t) };

  const hc = (check: Record<string, unknown>) => ({ health_checks: [{ timeout: '5s', interval: '0.5s', no_traffic_interval: '0.5s', unhealthy_threshold: 1, healthy_threshold: 1, ...check }] });
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [
      staticCluster('h1', [ports.h1], { ...KEEPALIVE, ...hc({ http_health_check: { path: '/h' } }) }),
      staticCluster('plain', [ports.plain], hc({ http_health_check: { path: '/h' } })),
      staticCluster('h2', [ports.h2], { ...KEEPALIVE, ...hc({ http_health_check: { path: '/h', codec_client_type: 'HTTP2' } }) }),
      staticCluster('tcp', [ports.tcp], { ...KEEPALIVE, ...hc({ tcp_health_check: { send: { text: '50494e47' }, receive: [{ text: '504f4e47' }] } }) }),
      staticCluster('grpc', [ports.grpc], { ...KEEPALIVE, ...hc({ grpc_health_check: {} }) }),
    ],
    listeners: [],
  });
  await waitFor('a health check connection to each upstream', () => ['h1', 'plain', 'h2', 'tcp', 'grpc'].every((n) => peers.has(n)) || undefined);

  for (const name of ['h1', 'h2', 'tcp', 'grpc'] as const) {
    const timer = await keepaliveTimer(peers.get(name)![0], ports[name]);
    assert.equal(timer.kind, 2, `${name}: keepalive timer expected on the health check connection, got timer kind ${timer.kind}`);
    // Above Node's keep-alive Agent 1 s (which would replace the cluster's 9 s on a kept HTTP/1.1 socket).
    assert.ok(timer.seconds <= 9 && timer.seconds > 2, `${name}: keepalive in ${timer.seconds}s, keepalive_time is 9s`);
  }
  const plain = await keepaliveTimer(peers.get('plain')![0], ports.plain);
  assert.equal(plain.kind, 0, `a cluster without tcp_keepalive: no keepalive on its health check connection (got kind ${plain.kind}, ${plain.seconds}s)`);
});

test('tcp_keepalive values are checked: out of range is an error, other upstream_connection_options fields are named in a warning', () => {
  const issues = new Issues();
  compileCluster(staticCluster('c', [1], { upstream_connection_options: { tcp_keepalive: { keepalive_time: 0, keepalive_probes: 500 }, set_local_interface_name_on_upstream_connections: true } }), 'cluster c', issues);
  assert.deepEqual(issues.errors, [
    "cluster c.upstream_connection_options.tcp_keepalive.keepalive_time: must be a whole number from 1 to 32767 (got 0); leave it out for the kernel's default",
    "cluster c.upstream_connection_options.tcp_keepalive.keepalive_probes: must be a whole number from 1 to 127 (got 500); leave it out for the kernel's default",
  ]);
  assert.equal(issues.warnings.length, 1);
  assert.match(issues.warnings[0], /upstream_connection_options\.set_local_interface_name_on_upstream_connections: field .* is not supported by rig proxy and is ignored/);
  const ok = new Issues();
  const c = compileCluster(staticCluster('c', [1], { upstreamConnectionOptions: { tcpKeepalive: { keepaliveTime: 60 } } }), 'cluster c', ok);
  assert.deepEqual([ok.errors, ok.warnings], [[], []]);
  assert.deepEqual(c.tcpKeepalive, { time: 60, interval: 0, probes: 0 });
  // gRPC health checks carry it like the others: nothing to warn about.
  const grpcCheck = { timeout: '1s', interval: '1s', unhealthy_threshold: 1, healthy_threshold: 1, grpc_health_check: {} };
  assert.deepEqual(checkHealthChecks(staticCluster('g', [1], { ...KEEPALIVE, health_checks: [grpcCheck] })), { errors: [], warnings: [] });
});
