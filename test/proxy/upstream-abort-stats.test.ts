// The upstream response codes Envoy's router charges for requests it ends itself (router.cc
// Filter::chargeUpstreamAbort → chargeUpstreamCode), through a real `rig proxy` from a static
// bootstrap: a route timeout (504), a refused connection, a reset before headers, no healthy host,
// a circuit breaker overflow (503) count in cluster.<name>.upstream_rq_<code> / _<class>xx /
// _completed and in the route's vhost.<vh>.route.<prefix>.upstream_rq_*; a retried attempt is not
// charged (a retried response is, under cluster.<name>.retry.), and a reset after the response
// started charges only the code it started with.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
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

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listenLocal(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** GET through the proxy: the status (0 when the connection failed before one) once the exchange is over, and whether the body ended. */
function exchange(port: number, p: string): Promise<{ status: number; complete: boolean }> {
  return new Promise((resolve) => {
    let status = 0;
    let complete = false;
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      res.on('data', () => undefined);
      res.on('end', () => (complete = true));
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status, complete }));
    });
    req.on('error', () => resolve({ status, complete }));
  });
}

test('requests the router ends itself are charged upstream codes as Envoy charges them', async (t) => {
  const held = new Set<http.ServerResponse>();
  const app = http.createServer((req, res) => {
    const url = req.url!;
    if (url.startsWith('/slow')) held.add(res); // never answered
    else if (url.startsWith('/drop')) req.socket.destroy(); // reset before any response
    else if (url.startsWith('/fail')) res.writeHead(503).end('down');
    else if (url.startsWith('/started')) {
      res.writeHead(200, { 'content-length': '100' });
      res.write('part of it');
      setTimeout(() => req.socket.destroy(), 50);
    } else res.writeHead(200).end('ok');
  });
  app.on('clientError', () => undefined);
  const appPort = await listenLocal(app);
  t.after(() => {
    for (const res of held) res.destroy();
    app.closeAllConnections();
  });
  t.after(() => new Promise<void>((r) => app.close(() => r())));
  const deadPort = await closedPort();

  const cluster = (name: string, port: number | undefined, extra: Record<string, unknown> = {}) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: port === undefined ? [] : [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...extra,
  });
  const noRetry = { num_retries: 0 };
  const routes = [
    { match: { prefix: '/slow' }, stat_prefix: 'slow', route: { cluster: 'slow', timeout: '0.2s', retry_policy: noRetry } },
    { match: { prefix: '/refused' }, stat_prefix: 'refused', route: { cluster: 'dead', retry_policy: noRetry } },
    { match: { prefix: '/drop' }, route: { cluster: 'reset', retry_policy: noRetry } },
    { match: { prefix: '/retry-drop' }, route: { cluster: 'retryreset', prefix_rewrite: '/drop', retry_policy: { retry_on: 'reset', num_retries: 1 } } },
    { match: { prefix: '/retry-slow' }, route: { cluster: 'pertry', prefix_rewrite: '/slow', retry_policy: { retry_on: '5xx', num_retries: 1, per_try_timeout: '0.2s' } } },
    { match: { prefix: '/fail' }, stat_prefix: 'fail', route: { cluster: 'retry5xx', retry_policy: { retry_on: '5xx', num_retries: 1 } } },
    { match: { prefix: '/started' }, route: { cluster: 'started', retry_policy: noRetry } },
    { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
    { match: { prefix: '/full' }, route: { cluster: 'full' } },
  ];
  const boot = {
    static_resources: {
      listeners: [
        {
          name: 'http',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'ingress', route_config: { name: 'local', virtual_hosts: [{ name: 'shop', domains: ['*'], routes }] }, http_filters: [ROUTER] } }] }],
        },
      ],
      clusters: [
        cluster('slow', appPort),
        cluster('dead', deadPort),
        cluster('reset', appPort),
        cluster('retryreset', appPort),
        cluster('pertry', appPort),
        cluster('retry5xx', appPort),
        cluster('started', appPort),
        cluster('empty', undefined),
        cluster('full', appPort, { circuit_breakers: { thresholds: [{ max_requests: 0 }] } }),
      ],
    },
  };
  const file = path.join(tempDir(t, 'rig-abort-stats-'), 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(boot));
  const { ports } = await startRigProxyFromFile(t, file);
  const port = ports.listeners.http;

  assert.equal((await exchange(port, '/slow')).status, 504);
  assert.equal((await exchange(port, '/refused')).status, 503);
  assert.equal((await exchange(port, '/drop')).status, 503);
  assert.equal((await exchange(port, '/retry-drop')).status, 503);
  assert.equal((await exchange(port, '/retry-slow')).status, 504);
  assert.equal((await exchange(port, '/fail')).status, 503);
  const started = await exchange(port, '/started');
  assert.equal(started.status, 200);
  assert.equal(started.complete, false, 'the started response is reset, not ended');
  assert.equal((await exchange(port, '/empty')).status, 503);
  assert.equal((await exchange(port, '/full')).status, 503);

  const counters = async (): Promise<Record<string, number>> => {
    const body = JSON.parse(await (await fetch(`http://127.0.0.1:${ports.admin}/stats?format=json&filter=${encodeURIComponent('^(cluster|vhost)\\.')}`)).text()) as { stats: { name?: string; value?: number }[] };
    const out: Record<string, number> = {};
    for (const s of body.stats) if (s.name !== undefined) out[s.name] = s.value!;
    return out;
  };
  // Stats are counted before the local reply is sent; one read after the last answer sees them all.
  const got = await waitFor('the stats', async () => {
    const c = await counters();
    return c['cluster.full.upstream_rq_pending_overflow'] === 1 ? c : undefined;
  });
  const of = (prefix: string) => Object.fromEntries(Object.entries(got).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  const codes = (prefix: string) => {
    const s = of(prefix);
    return Object.fromEntries(Object.entries(s).filter(([k, v]) => /^upstream_rq_(\d+|\dxx|completed)$/.test(k) && v > 0));
  };

  // The route timeout (onResponseTimeout): the attempt awaiting headers is charged the timeout code.
  assert.deepEqual(codes('cluster.slow.'), { upstream_rq_504: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  assert.equal(of('cluster.slow.').upstream_rq_timeout, 1);
  assert.deepEqual(codes('vhost.shop.route.slow.'), { upstream_rq_504: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  // A refused connection and a reset before headers (onUpstreamReset): 503.
  assert.deepEqual(codes('cluster.dead.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  assert.deepEqual(codes('vhost.shop.route.refused.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  assert.deepEqual(codes('cluster.reset.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  // Retried: the reset that is retried charges nothing (maybeRetryReset), the last one 503.
  assert.deepEqual(codes('cluster.retryreset.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  assert.equal(of('cluster.retryreset.').upstream_rq_retry, 1);
  // Per-try timeouts: the retried one charges nothing, the last one its 504 (onPerTryTimeoutCommon).
  assert.deepEqual(codes('cluster.pertry.'), { upstream_rq_504: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  assert.equal(of('cluster.pertry.').upstream_rq_per_try_timeout, 2);
  // A retried response goes to cluster.<name>.retry.upstream_rq_* only (onUpstreamHeaders), the final one as usual.
  assert.deepEqual(codes('cluster.retry5xx.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  assert.deepEqual(codes('cluster.retry5xx.retry.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  assert.deepEqual(codes('vhost.shop.route.fail.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  // Reset after the response started: the 200 it started with, no abort code.
  assert.deepEqual(codes('cluster.started.'), { upstream_rq_200: 1, upstream_rq_2xx: 1, upstream_rq_completed: 1 });
  // No healthy upstream (sendNoHealthyUpstreamResponse) and an overflow (onUpstreamReset, overflow): 503.
  assert.deepEqual(codes('cluster.empty.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  assert.equal(of('cluster.empty.').upstream_cx_none_healthy, 1);
  assert.deepEqual(codes('cluster.full.'), { upstream_rq_503: 1, upstream_rq_5xx: 1, upstream_rq_completed: 1 });
  // A cluster that never retried a response has no retry.* stats.
  assert.deepEqual(Object.keys(got).filter((k) => k.includes('.retry.upstream_rq')).sort(), ['cluster.retry5xx.retry.upstream_rq_503', 'cluster.retry5xx.retry.upstream_rq_5xx', 'cluster.retry5xx.retry.upstream_rq_completed']);
});
