// The connection circuit breakers through the real proxy, as Envoy's pools apply them: the
// cluster's max_connections (istiod's DestinationRule connectionPool.tcp.maxConnections) counts the
// connections to all its hosts together, per_host_thresholds max_connections those to each host.
// A pool checks before it opens a connection; at the limit it counts upstream_cx_overflow and opens
// none, unless it has no connection at all (Envoy then opens one anyway, so that its waiting
// requests are not stranded). The requests wait, pending, for one of the pool's connections
// (HTTP/1.1) or a stream slot on one (HTTP/2), and all succeed. Over HTTP/1.1 a request is pending
// exactly while it waits in a pool (the first connection connecting too), under the cluster's
// max_pending_requests: one that would wait beyond it is refused at once (503 UO, not retried).
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { listenLocal } from '../helpers/listen.ts';
import { until, waitFor } from '../helpers/wait.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { configure, httpListener, request, routeConfig, startTestRuntime, staticCluster, type Harness } from '../proxy/harness.ts';

type After = { after(fn: () => unknown): void };

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

/** Upstreams that hold every request until release(), then answer at once; each counts the connections it accepted. */
interface Held {
  ports: number[];
  connections: number[];
  /** Requests received, per upstream. */
  requests: number[];
  release(): void;
}

async function heldH1Upstreams(t: After, n: number): Promise<Held> {
  const held: (() => void)[] = [];
  let released = false;
  const up: Held = { ports: [], connections: [], requests: [], release: () => ((released = true), held.splice(0).forEach((f) => f())) };
  for (let i = 0; i < n; i++) {
    up.connections.push(0);
    up.requests.push(0);
    const server = http.createServer((req, res) => {
      up.requests[i]++;
      req.resume();
      const answer = () => res.end(`upstream ${i}`);
      if (released) answer();
      else held.push(answer);
    });
    server.on('connection', () => up.connections[i]++);
    t.after(() => server.closeAllConnections());
    up.ports.push(await listenLocal(server, t));
  }
  return up;
}

async function heldH2Upstreams(t: After, n: number): Promise<Held> {
  const held: (() => void)[] = [];
  let released = false;
  const up: Held = { ports: [], connections: [], requests: [], release: () => ((released = true), held.splice(0).forEach((f) => f())) };
  for (let i = 0; i < n; i++) {
    up.connections.push(0);
    up.requests.push(0);
    const server = http2.createServer();
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => {
      up.connections[i]++;
      sessions.add(s);
      s.once('close', () => sessions.delete(s));
    });
    server.on('stream', (stream) => {
      up.requests[i]++;
      stream.on('error', () => undefined);
      stream.resume();
      const answer = () => {
        stream.respond({ ':status': 200 });
        stream.end(`upstream ${i}`);
      };
      if (released) answer();
      else held.push(answer);
    });
    t.after(() => {
      for (const s of sessions) s.destroy();
    });
    up.ports.push(await listenLocal(server as unknown as net.Server, t));
  }
  return up;
}

/** HTTP/2 to the upstreams, one stream per connection: a request needs a connection of its own or waits for a stream slot. */
const H2_ONE_STREAM = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 1 } } },
  },
};

async function proxyTo(t: After, up: Pick<Held, 'ports'>, extra: Record<string, unknown>, route: Record<string, unknown> = {}): Promise<Harness> {
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('up', up.ports, { lb_policy: 'ROUND_ROBIN', ...extra })],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up', ...route } }]))],
  });
  return h;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/**
 * Sends `n` requests at once; once all are sent to the cluster and `onUpstream` of them reached the
 * upstreams (or more did), checks `whileHeld`, then releases them all: every one is answered 200.
 */
async function burst(h: Harness, up: Held, n: number, onUpstream: number, whileHeld: () => void): Promise<void> {
  const port = h.port('l');
  const replies = Array.from({ length: n }, (_, i) => request(port, { path: `/${i}`, agent: new http.Agent() }));
  await waitFor(() => `${n} upstream requests, ${onUpstream} at the upstreams (have ${stat(h, 'cluster.up.upstream_rq_active')}, ${up.requests.join(',')})`, () => sum(up.requests) > onUpstream || (stat(h, 'cluster.up.upstream_rq_active') === n && sum(up.requests) === onUpstream) || undefined, { intervalMs: 10 });
  whileHeld();
  up.release();
  for (const r of await Promise.all(replies)) assert.equal(r.status, 200);
}

test('HTTP/1.1: max_connections 2 over three hosts: the third host\'s pool, with none, opens one (Envoy); no pool opens a second', async (t) => {
  const up = await heldH1Upstreams(t, 3);
  const h = await proxyTo(t, up, { circuit_breakers: { thresholds: [{ max_connections: 2, max_pending_requests: 100, track_remaining: true }] } });
  // Round robin: the first request to each host. Hosts 1 and 2 connect under the limit, host 3's
  // pool is at the limit with no connection: it opens one anyway. Every later request finds its
  // host's pool with a (busy) connection and the cluster at its limit: it waits.
  await burst(h, up, 9, 3, () => {
    assert.deepEqual(up.connections, [1, 1, 1]);
    assert.deepEqual(up.requests, [1, 1, 1]);
    assert.ok(stat(h, 'cluster.up.upstream_cx_overflow') >= 6, `upstream_cx_overflow ${stat(h, 'cluster.up.upstream_cx_overflow')}`);
    assert.equal(stat(h, 'cluster.up.circuit_breakers.default.cx_open'), 1);
    assert.equal(stat(h, 'cluster.up.circuit_breakers.default.remaining_cx'), 0);
    assert.equal(stat(h, 'cluster.up.upstream_rq_pending_active'), 6);
  });
  assert.deepEqual(up.connections, [1, 1, 1], 'the waiting requests went on the same connections');
  assert.deepEqual(up.requests, [3, 3, 3]);
  assert.equal(stat(h, 'cluster.up.upstream_rq_pending_overflow'), 0);
});

test('HTTP/1.1: per_host_thresholds max_connections 1: one connection, the other requests queue and all succeed', async (t) => {
  const up = await heldH1Upstreams(t, 1);
  const h = await proxyTo(t, up, { circuit_breakers: { per_host_thresholds: [{ max_connections: 1 }] } });
  await burst(h, up, 5, 1, () => {
    assert.deepEqual(up.connections, [1]);
    assert.ok(stat(h, 'cluster.up.upstream_cx_overflow') >= 4);
    assert.equal(stat(h, 'cluster.up.upstream_rq_pending_active'), 4);
  });
  assert.deepEqual(up.connections, [1]);
  assert.deepEqual(up.requests, [5]);
});

test('HTTP/2: max_connections 2 over three hosts counts connections, not streams: one per host pool, requests wait for a stream slot', async (t) => {
  const up = await heldH2Upstreams(t, 3);
  const h = await proxyTo(t, up, { ...H2_ONE_STREAM, circuit_breakers: { thresholds: [{ max_connections: 2, track_remaining: true }] } });
  await burst(h, up, 9, 3, () => {
    assert.deepEqual(up.connections, [1, 1, 1]);
    assert.ok(stat(h, 'cluster.up.upstream_cx_overflow') >= 6, `upstream_cx_overflow ${stat(h, 'cluster.up.upstream_cx_overflow')}`);
    assert.equal(stat(h, 'cluster.up.circuit_breakers.default.remaining_cx'), 0);
  });
  assert.deepEqual(up.connections, [1, 1, 1]);
  assert.deepEqual(up.requests, [3, 3, 3]);
});

test('HTTP/2: per_host_thresholds max_connections 1: one connection, streams one after another', async (t) => {
  const up = await heldH2Upstreams(t, 1);
  const h = await proxyTo(t, up, { ...H2_ONE_STREAM, circuit_breakers: { per_host_thresholds: [{ max_connections: 1 }] } });
  await burst(h, up, 4, 1, () => {
    assert.deepEqual(up.connections, [1]);
    assert.ok(stat(h, 'cluster.up.upstream_cx_overflow') >= 3);
  });
  assert.deepEqual(up.connections, [1]);
  assert.deepEqual(up.requests, [4]);
});

/** Retries that would retry an overflow if the router took it for an ordinary reset or 5xx. */
const RETRIES = { retry_policy: { retry_on: '5xx,reset,connect-failure', num_retries: 3 } };

/**
 * One request on the only connection, one pending behind it; the third would wait too, past
 * max_pending_requests 1: refused at once as Envoy's pool refuses it, and not retried.
 */
async function onePendingThenOverflow(t: After, circuitBreakers: Record<string, unknown>): Promise<void> {
  const up = await heldH1Upstreams(t, 1);
  const h = await proxyTo(t, up, { circuit_breakers: circuitBreakers }, RETRIES);
  const port = h.port('l');
  const first = request(port, { path: '/1' });
  await until('the first request at the upstream', () => up.requests[0] === 1, { intervalMs: 10 });
  const second = request(port, { path: '/2' });
  await until('the second request pending', () => stat(h, 'cluster.up.upstream_rq_pending_active') === 1, { intervalMs: 10 });
  const third = await request(port, { path: '/3' });
  assert.equal(third.status, 503);
  assert.equal(third.headers['x-envoy-overloaded'], 'true');
  assert.match(third.body, /reset reason: overflow/);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'UO');
  assert.equal(stat(h, 'cluster.up.upstream_rq_pending_overflow'), 1);
  assert.equal(stat(h, 'cluster.up.upstream_rq_retry'), 0, 'an overflow is not retried');
  assert.equal(stat(h, 'cluster.up.circuit_breakers.default.rq_pending_open'), 1);
  assert.equal(stat(h, 'cluster.up.circuit_breakers.default.remaining_pending'), 0);
  up.release();
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
  assert.deepEqual(up.connections, [1]);
  assert.deepEqual(up.requests, [2]);
  assert.equal(stat(h, 'cluster.up.upstream_rq_pending_total'), 2, 'the first waited for its connection, the second for the busy one');
  assert.equal(stat(h, 'cluster.up.circuit_breakers.default.remaining_pending'), 1);
}

test('HTTP/1.1: max_connections 1, max_pending_requests 1: one request on the connection, one pending, the third 503 UO at once, not retried', async (t) => {
  await onePendingThenOverflow(t, { thresholds: [{ max_connections: 1, max_pending_requests: 1, track_remaining: true }] });
});

test('HTTP/1.1: per_host_thresholds max_connections 1 under a cluster max_connections 10: the queued request is pending, the next overflows', async (t) => {
  await onePendingThenOverflow(t, { thresholds: [{ max_connections: 10, max_pending_requests: 1, track_remaining: true }], per_host_thresholds: [{ max_connections: 1 }] });
});

test('HTTP/1.1: a request waiting for the first connection to connect is pending; the next one overflows', async (t) => {
  // A TLS upstream that accepts and never answers the handshake: the connection stays connecting.
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  t.after(() => sockets.forEach((s) => s.destroy()));
  const ports = [await listenLocal(server, t)];
  const tls = { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni: 'upstream.test' } } };
  const h = await proxyTo(t, { ports }, { ...tls, connect_timeout: '30s', circuit_breakers: { thresholds: [{ max_pending_requests: 1, track_remaining: true }] } });
  const port = h.port('l');
  const first = request(port, { path: '/1' }).catch(() => undefined);
  await until('the first connection accepted', () => sockets.size === 1, { intervalMs: 10 });
  assert.equal(stat(h, 'cluster.up.upstream_rq_pending_active'), 1);
  assert.equal(stat(h, 'cluster.up.circuit_breakers.default.rq_pending_open'), 1);
  assert.equal(stat(h, 'cluster.up.circuit_breakers.default.remaining_pending'), 0);
  const second = await request(port, { path: '/2' });
  assert.equal(second.status, 503);
  assert.equal(second.headers['x-envoy-overloaded'], 'true');
  assert.equal(stat(h, 'cluster.up.upstream_rq_pending_overflow'), 1);
  assert.equal(sockets.size, 1, 'the refused request opened no connection');
  sockets.forEach((s) => s.destroy());
  assert.equal((await first)?.status, 503, 'the pending request fails with its connection');
});

test('HTTP/1.1: max_connections 1 over two hosts: a request on the second host\'s own connection is not pending; the pending slot goes to the one that waits', async (t) => {
  const up = await heldH1Upstreams(t, 2);
  const h = await proxyTo(t, up, { circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1, track_remaining: true }] } }, RETRIES);
  const port = h.port('l');
  // Round robin: the first two requests go on a connection each (the second host's pool, with
  // none, opens one over the limit); neither waits once connected. One after the other: each is
  // pending while its connection connects.
  const onConnections = [request(port, { path: '/1' })];
  await until('the first request at its upstream', () => sum(up.requests) === 1, { intervalMs: 10 });
  onConnections.push(request(port, { path: '/2' }));
  await until('the second request at the other upstream', () => up.requests[0] === 1 && up.requests[1] === 1, { intervalMs: 10 });
  assert.equal(stat(h, 'cluster.up.circuit_breakers.default.remaining_pending'), 1);
  const third = request(port, { path: '/3' });
  await until('the third request pending', () => stat(h, 'cluster.up.upstream_rq_pending_active') === 1, { intervalMs: 10 });
  const fourth = await request(port, { path: '/4' });
  assert.equal(fourth.status, 503);
  assert.equal(fourth.headers['x-envoy-overloaded'], 'true');
  assert.equal(stat(h, 'cluster.up.upstream_rq_pending_overflow'), 1);
  assert.equal(stat(h, 'cluster.up.upstream_rq_retry'), 0);
  up.release();
  for (const r of await Promise.all([...onConnections, third])) assert.equal(r.status, 200);
  assert.deepEqual(up.connections, [1, 1]);
});
