// Circuit breakers, outlier detection and active health checks inside the running proxy: real
// downstream requests through a listener, real upstream servers on 127.0.0.1:0.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createAdminHandler, listen } from '../../../src/proxy/admin/admin-server.ts';
import { LogLevels } from '../../../src/proxy/admin/logging.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { test, type TestContext } from 'node:test';
import { ENDPOINT_TYPE, addr, configure, httpListener, request, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster, type Harness, type Upstream } from '../harness.ts';
import { formatResponseFlags } from '../../../src/proxy/response-flags.ts';
import { TCP_PROXY_TYPE } from '../../../src/envoy/index.ts';
import { until } from '../../helpers/wait.ts';

async function setup(t: TestContext, clusters: Record<string, unknown>[], ups: Upstream[]): Promise<Harness> {
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    for (const u of ups) await u.close();
  });
  const routes = clusters.map((c) => ({ match: { prefix: `/${String(c.name)}` }, route: { cluster: c.name } }));
  await configure(h, { clusters, routes: [routeConfig('r', routes)], listeners: [httpListener('l', 'r')] });
  return h;
}

const stat = (h: Harness, name: string) => h.rt.stats.all().find((s) => s.name === name)?.value;

/** Polls `cond` every 10 ms, failing after `tries` polls (no timing assertion: a bound on waiting). */
test('circuit breaker: max_connections busy connections and max_pending_requests waiting requests are admitted, the rest get 503 UO', async (t) => {
  const held: http.ServerResponse[] = [];
  let active = 0;
  let peak = 0;
  const up = await startUpstream('cb', (_req, res) => {
    active++;
    peak = Math.max(peak, active);
    res.on('finish', () => active--);
    held.push(res);
    return true;
  });
  const h = await setup(t, [staticCluster('cb', [up.port], { circuit_breakers: { thresholds: [{ max_connections: 2, max_pending_requests: 3, track_remaining: true }] } })], [up]);
  const port = h.port('l');
  const settled: { status: number; overloaded?: string }[] = [];
  const send = (): void => void request(port, { path: '/cb' }).then((x) => settled.push({ status: x.status, overloaded: x.headers['x-envoy-overloaded'] as string | undefined }));
  // As Envoy's pool, a request waiting for its connection to connect is pending too: the first two
  // go one after the other, each on its own connection; of the next eight, three wait, five overflow.
  for (let i = 1; i <= 2; i++) {
    send();
    await until('a request at the upstream', () => held.length === i, { timeoutMs: 5000, intervalMs: 10 });
  }
  for (let i = 0; i < 8; i++) send();
  await until('five refusals and two upstream requests', () => settled.length === 5 && held.length === 2, { timeoutMs: 5000, intervalMs: 10 });
  assert.deepEqual(settled, Array(5).fill({ status: 503, overloaded: 'true' }));
  assert.equal(stat(h, 'cluster.cb.upstream_rq_pending_overflow'), 5);
  assert.equal(stat(h, 'cluster.cb.circuit_breakers.default.rq_pending_open'), 1);
  assert.equal(stat(h, 'cluster.cb.circuit_breakers.default.remaining_pending'), 0);
  assert.ok(h.streams.some((s) => formatResponseFlags(s.responseFlags) === 'UO'));
  // Finishing upstream requests lets the queued ones through, two at a time.
  while (settled.length < 10) {
    await until('an upstream request', () => held.length > 0 || settled.length === 10, { timeoutMs: 5000, intervalMs: 10 });
    held.shift()?.end('ok');
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.deepEqual(settled.slice(5).map((s) => s.status), [200, 200, 200, 200, 200]);
  assert.equal(up.requests.length, 5);
  assert.equal(peak, 2);
  assert.equal(stat(h, 'cluster.cb.circuit_breakers.default.remaining_pending'), 3);
});

test('outlier detection: a host failing with consecutive 5xx leaves the rotation and comes back', async (t) => {
  let failing = true;
  const bad = await startUpstream('bad', (_req, res) => {
    if (!failing) return false;
    res.writeHead(500);
    res.end('boom');
    return true;
  });
  const good = await startUpstream('good');
  const h = await setup(
    t,
    [staticCluster('od', [bad.port, good.port], { outlier_detection: { consecutive_5xx: 3, interval: '0.05s', base_ejection_time: '0.3s', max_ejection_percent: 100 } })],
    [bad, good],
  );
  const port = h.port('l');
  let fives = 0;
  for (let i = 0; i < 6; i++) if ((await request(port, { path: '/od' })).status === 500) fives++;
  assert.equal(fives, 3, 'round robin: every other request hit the bad host until it was ejected');
  assert.equal(stat(h, 'cluster.od.outlier_detection.ejections_active'), 1);
  assert.equal(stat(h, 'cluster.od.outlier_detection.ejections_enforced_consecutive_5xx'), 1);
  for (let i = 0; i < 10; i++) assert.equal((await request(port, { path: '/od' })).status, 200);
  assert.equal(bad.requests.length, 3);
  failing = false;
  await until('the host to return', () => stat(h, 'cluster.od.outlier_detection.ejections_active') === 0, { timeoutMs: 5000, intervalMs: 10 });
  for (let i = 0; i < 4; i++) await request(port, { path: '/od' });
  assert.ok(bad.requests.length > 3, 'the returned host gets traffic again');
});

test('active health checks: a host failing its check is removed, and restored when it passes', async (t) => {
  let sick = false;
  const healthz = (name: string, isSick: () => boolean) =>
    startUpstream(name, (req, res) => {
      if (req.url !== '/healthz') return false;
      res.writeHead(isSick() ? 503 : 200);
      res.end();
      return true;
    });
  const a = await healthz('a', () => sick);
  const b = await healthz('b', () => false);
  const hc = { timeout: '1s', interval: '0.03s', no_traffic_interval: '0.03s', unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: '/healthz' } };
  const h = await setup(t, [staticCluster('hc', [a.port, b.port], { health_checks: [hc] })], [a, b]);
  const port = h.port('l');
  await until('both hosts healthy', () => stat(h, 'cluster.hc.health_check.healthy') === 2, { timeoutMs: 5000, intervalMs: 10 });
  const servers = async (n: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) seen.add((await request(port, { path: '/hc' })).json().server);
    return seen;
  };
  assert.deepEqual(await servers(4), new Set(['a', 'b']));
  sick = true;
  await until('host a to fail its check', () => stat(h, 'cluster.hc.health_check.healthy') === 1, { timeoutMs: 5000, intervalMs: 10 });
  assert.deepEqual(await servers(6), new Set(['b']));
  const admin = http.createServer(createAdminHandler({ runtime: h.rt, bootstrap: {}, commandLine: [], onQuit: () => undefined, logLevels: new LogLevels(silentLogger.child({})) }));
  const adminPort = await listen(admin, '127.0.0.1', 0);
  t.after(() => admin.close());
  const clusters = (await request(adminPort, { path: '/clusters' })).body.split('\n');
  assert.ok(clusters.includes(`hc::127.0.0.1:${a.port}::health_flags::/failed_active_hc`), clusters.join('\n'));
  assert.ok(clusters.includes(`hc::127.0.0.1:${b.port}::health_flags::healthy`));
  assert.ok(clusters.includes('hc::default_priority::max_pending_requests::1024'));
  assert.equal(clusters.filter((l) => l === 'hc::default_priority::max_connections::1024').length, 1);
  sick = false;
  await until('host a to pass again', () => stat(h, 'cluster.hc.health_check.healthy') === 2, { timeoutMs: 5000, intervalMs: 10 });
  assert.deepEqual(await servers(4), new Set(['a', 'b']));
});

test('EDS locality weights and priorities steer traffic (locality_weighted_lb_config, failover)', async (t) => {
  const [a, b, c] = await Promise.all([startUpstream('a'), startUpstream('b'), startUpstream('c')]);
  const eds = { name: 'eds', type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} } }, common_lb_config: { locality_weighted_lb_config: {} } };
  const h = await setup(t, [eds], [a, b, c]);
  const ep = (port: number, health?: string) => ({ endpoint: { address: addr(port) }, ...(health ? { health_status: health } : {}) });
  const assign = (bHealth?: string) =>
    h.apply(ENDPOINT_TYPE, [
      {
        cluster_name: 'eds',
        endpoints: [
          { locality: { zone: 'z1' }, load_balancing_weight: 1, lb_endpoints: [ep(a.port)] },
          { locality: { zone: 'z2' }, load_balancing_weight: 3, lb_endpoints: [ep(b.port, bHealth)] },
          { locality: { zone: 'z3' }, priority: 1, load_balancing_weight: 1, lb_endpoints: [ep(c.port)] },
        ],
      },
    ]);
  assert.deepEqual(assign(), []);
  await h.rt.settled();
  const port = h.port('l');
  const count = async (n: number) => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const s = (await request(port, { path: '/eds' })).json().server;
      seen[s] = (seen[s] ?? 0) + 1;
    }
    return seen;
  };
  assert.deepEqual(await count(40), { a: 10, b: 30 }, 'locality weights 1:3 (EDF schedule is exact)');
  // z2 unhealthy: P0 keeps half its hosts → health 70%: P0 (only z1) takes 70%, P1 the rest.
  assert.deepEqual(assign('UNHEALTHY'), []);
  await h.rt.settled();
  const seen = await count(200);
  assert.equal(seen.b, undefined);
  assert.ok(seen.a > 110 && seen.a < 170 && seen.c > 30, `failover split ${JSON.stringify(seen)}`);
});

test('retry priority previous_priorities sends the retry to the next priority', async (t) => {
  const p0 = await startUpstream('p0', (_req, res) => {
    res.writeHead(503);
    res.end('p0 down');
    return true;
  });
  const p1 = await startUpstream('p1');
  const h = await startTestRuntime(t, [p0, p1]);
  const cluster = {
    name: 'prio',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: 'prio', endpoints: [{ priority: 0, lb_endpoints: [{ endpoint: { address: addr(p0.port) } }] }, { priority: 1, lb_endpoints: [{ endpoint: { address: addr(p1.port) } }] }] },
  };
  const retry = { retry_on: '5xx', num_retries: 1, retry_back_off: { base_interval: '0.001s' } };
  const previous = { name: 'envoy.retry_priorities.previous_priorities', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', update_frequency: 1 } };
  const routes = [
    { match: { prefix: '/plain' }, route: { cluster: 'prio', retry_policy: retry } },
    { match: { prefix: '/prio' }, route: { cluster: 'prio', retry_policy: { ...retry, retry_priority: previous } } },
  ];
  await configure(h, { clusters: [cluster], routes: [routeConfig('r', routes)], listeners: [httpListener('l', 'r')] });
  const port = h.port('l');
  assert.equal((await request(port, { path: '/plain' })).status, 503, 'without retry priority the retry stays on P0');
  for (let i = 0; i < 3; i++) assert.equal((await request(port, { path: '/prio' })).json().server, 'p1');
});

test('a cluster with load_balancing_policy (typed maglev) decodes and balances consistently by header', async (t) => {
  const ups = await Promise.all(['u1', 'u2', 'u3'].map((n) => startUpstream(n)));
  const cluster = staticCluster(
    'mg',
    ups.map((u) => u.port),
    { load_balancing_policy: { policies: [{ typed_extension_config: { name: 'envoy.load_balancing_policies.maglev', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev', table_size: 131 } } }] } },
  );
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    for (const u of ups) await u.close();
  });
  const routes = [{ match: { prefix: '/' }, route: { cluster: 'mg', hash_policy: [{ header: { header_name: 'x-user' } }] } }];
  await configure(h, { clusters: [cluster], routes: [routeConfig('r', routes)], listeners: [httpListener('l', 'r')] });
  const port = h.port('l');
  const servers = new Set<string>();
  for (let u = 0; u < 12; u++) {
    const first = (await request(port, { headers: { 'x-user': `user-${u}` } })).json().server;
    servers.add(first);
    for (let i = 0; i < 3; i++) assert.equal((await request(port, { headers: { 'x-user': `user-${u}` } })).json().server, first, `user-${u} stays on ${first}`);
  }
  assert.ok(servers.size > 1, 'different users spread over hosts');
});

test('circuit breaker on a TCP proxy cluster: connections beyond max_connections are refused (UO)', async (t) => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const sockets = new Set<net.Socket>();
  echo.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => echo.close(() => r()));
  });
  const echoPort = (echo.address() as AddressInfo).port;
  const tcpListener = { name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster: 'cbtcp' } }] }] };
  await configure(h, { clusters: [staticCluster('cbtcp', [echoPort], { circuit_breakers: { thresholds: [{ max_connections: 1 }] } })], listeners: [tcpListener] });
  const port = h.port('tcp');
  const talk = (s: net.Socket, text: string) =>
    new Promise<string>((resolve) => {
      s.once('data', (d) => resolve(d.toString()));
      s.once('close', () => resolve('<closed>'));
      s.write(text);
    });
  const connect = async () => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    return s;
  };
  const first = await connect();
  t.after(() => first.destroy());
  assert.equal(await talk(first, 'hello'), 'hello');
  const second = await connect();
  assert.equal(await talk(second, 'nope'), '<closed>');
  assert.equal(stat(h, 'cluster.cbtcp.upstream_cx_overflow'), 1);
  first.destroy();
  await until('the connection slot to free up', () => stat(h, 'cluster.cbtcp.circuit_breakers.default.cx_open') === 0, { timeoutMs: 5000, intervalMs: 10 });
  const third = await connect();
  t.after(() => third.destroy());
  assert.equal(await talk(third, 'again'), 'again');
});
