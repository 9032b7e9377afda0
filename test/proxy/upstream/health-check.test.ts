// Active health checks against real HTTP, HTTP/2, TCP and gRPC health servers on 127.0.0.1:0:
// hosts leave the load-balancing set when they fail and come back when they pass.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { HealthChecker, checkHealthChecks, healthFlagsString } from '../../../src/proxy/upstream/health-check.ts';
import { HEALTH_SERVICE } from '../../helpers/grpc-health-h2.ts';
import { LocalStats } from '../../../src/proxy/upstream/circuit-breaker.ts';
import { HealthFlag, type Host } from '../../../src/proxy/upstream/host.ts';
import { createLoadBalancer } from '../../../src/proxy/upstream/lb/index.ts';
import { host } from './hosts.ts';
import { startGrpcServer } from '../../helpers/grpc-server.ts';
import { listenLocal } from '../../helpers/listen.ts';

const FAST = { timeout: '0.5s', interval: '0.02s', no_traffic_interval: '0.02s', unhealthy_threshold: 2, healthy_threshold: 2 };

function start(t: TestContext, healthCheck: Record<string, unknown>, hosts: Host[], stats = new LocalStats()): HealthChecker {
  const hc = HealthChecker.fromCluster({ name: 'svc', health_checks: [{ ...FAST, ...healthCheck }] }, hosts, { stats });
  assert.ok(hc);
  t.after(() => hc.close());
  return hc;
}

/** Waits until `host` reaches the wanted health (by 'change' events), failing after 50 checks. */
async function until(hc: HealthChecker, h: Host, healthy: boolean): Promise<void> {
  let checks = 0;
  while (((h.healthFlags & HealthFlag.FailedActiveHc) === 0) !== healthy) {
    const [checked] = await once(hc, 'checked');
    if (checked === h && ++checks > 50) assert.fail(`${h.key} did not become ${healthy ? 'healthy' : 'unhealthy'}`);
  }
}

test('HTTP: pending until the first check, out on a bad status at once, back after healthy_threshold', async (t) => {
  let status = 200;
  const seen: { host?: string; ua?: string; path?: string }[] = [];
  const port = await listenLocal(
    http.createServer((req, res) => {
      seen.push({ host: req.headers.host, ua: req.headers['user-agent'], path: req.url });
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end();
    }),
    t,
  );
  const target = host(1, { address: '127.0.0.1', port });
  const other = host(2);
  const stats = new LocalStats();
  const hc = start(t, { http_health_check: { path: '/healthz' } }, [target], stats);
  assert.equal(healthFlagsString(target), '/failed_active_hc/pending_active_hc');
  assert.equal(healthFlagsString(other), 'healthy');
  const [changed, healthy] = await once(hc, 'change');
  assert.equal(changed, target);
  assert.equal(healthy, true, 'one success is enough for a new host');
  assert.equal(healthFlagsString(target), 'healthy');
  assert.deepEqual(seen[0], { host: 'svc', ua: 'Envoy/HC', path: '/healthz' });

  status = 503;
  const [, down] = await once(hc, 'change');
  assert.equal(down, false);
  assert.equal(healthFlagsString(target), '/failed_active_hc');
  const lb = createLoadBalancer('ROUND_ROBIN', [target, other], {});
  for (let i = 0; i < 4; i++) assert.equal(lb.pick(), other);

  status = 200;
  let successes = 0;
  hc.on('checked', (h, r) => h === target && r === 0 && successes++);
  await until(hc, target, true);
  assert.equal(successes, 2, 'healthy_threshold consecutive successes');
  assert.ok((stats.values.get('cluster.svc.health_check.failure')?.value ?? 0) >= 1);
  assert.equal(stats.values.get('cluster.svc.health_check.healthy')?.value, 1);
});

test('HTTP: expected_statuses ranges, custom host, retriable statuses count toward the threshold', async (t) => {
  let status = 204;
  const hosts: (string | undefined)[] = [];
  const port = await listenLocal(
    http.createServer((req, res) => {
      hosts.push(req.headers.host);
      res.statusCode = status;
      res.end();
    }),
    t,
  );
  const target = host(1, { address: '127.0.0.1', port });
  const hc = start(t, { unhealthy_threshold: 3, http_health_check: { path: '/', host: 'health.local', expected_statuses: [{ start: 200, end: 300 }], retriable_statuses: [{ start: 429, end: 430 }] } }, [target]);
  await until(hc, target, true);
  assert.equal(hosts[0], 'health.local');
  status = 429;
  let failures = 0;
  hc.on('checked', (h, r) => h === target && r !== 0 && failures++);
  await until(hc, target, false);
  assert.equal(failures, 3, 'a retriable status needs unhealthy_threshold failures');
});

test('HTTP: a host that stops listening fails after unhealthy_threshold network failures', async (t) => {
  const server = http.createServer((_req, res) => res.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const target = host(1, { address: '127.0.0.1', port });
  const hc = start(t, { http_health_check: { path: '/' } }, [target]);
  await until(hc, target, true);
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  let failures = 0;
  hc.on('checked', (h, r) => h === target && r !== 0 && failures++);
  await until(hc, target, false);
  assert.equal(failures, 2);
});

test('HTTP/2 (codec_client_type HTTP2) and body receive matching', async (t) => {
  let body = 'status: ok';
  const server = http2.createServer((req, res) => {
    res.statusCode = req.headers[':authority'] === 'svc' ? 200 : 400;
    res.end(body);
  });
  const port = await listenLocal(server, t);
  const target = host(1, { address: '127.0.0.1', port });
  const hc = start(t, { http_health_check: { path: '/h', codec_client_type: 'HTTP2', receive: [{ text: Buffer.from('ok').toString('hex') }] } }, [target]);
  await until(hc, target, true);
  body = 'status: degraded';
  await until(hc, target, false);
});

test('TCP: send/receive hex payloads; a wrong answer fails the host at once', async (t) => {
  let reply = 'PONG';
  const server = net.createServer((s) => {
    s.on('data', (d) => {
      if (d.toString() === 'PING') s.end(reply);
    });
    s.on('error', () => {});
  });
  const port = await listenLocal(server, t);
  const target = host(1, { address: '127.0.0.1', port });
  const hc = start(t, { tcp_health_check: { send: { text: '50494e47' }, receive: [{ text: '504f' }, { text: '4e47' }] } }, [target]);
  await until(hc, target, true);
  reply = 'NOPE';
  let failures = 0;
  hc.on('checked', (h, r) => h === target && r !== 0 && failures++);
  await until(hc, target, false);
  assert.equal(failures, 1);
  reply = 'PONG';
  await until(hc, target, true);
});

test('TCP: connect-only check, and hosts added/removed while running', async (t) => {
  const server = net.createServer((s) => s.end());
  const port = await listenLocal(server, t);
  const a = host(1, { address: '127.0.0.1', port });
  const hc = start(t, { tcp_health_check: {} }, [a]);
  await until(hc, a, true);
  const closed = net.createServer();
  const deadPort = await listenLocal(closed);
  await new Promise<void>((r) => closed.close(() => r()));
  const b = host(2, { address: '127.0.0.1', port: deadPort });
  hc.updateHosts([a, b]);
  assert.equal(healthFlagsString(b), '/failed_active_hc/pending_active_hc');
  await once(hc, 'checked');
  while (b.healthFlags & HealthFlag.PendingActiveHc) await once(hc, 'checked');
  assert.equal(healthFlagsString(b), '/failed_active_hc');
  hc.updateHosts([b]);
  let checkedA = false;
  hc.on('checked', (h) => (checkedA ||= h === a));
  for (let i = 0; i < 3; i++) await once(hc, 'checked');
  assert.equal(checkedA, false, 'a removed host is no longer checked');
});

test('gRPC: grpc.health.v1 SERVING is healthy, NOT_SERVING fails the host at once', async (t) => {
  const statuses = new Map<string, number>([['reviews', 1]]);
  const port = await startGrpcServer(t, HEALTH_SERVICE, {
    Check: (call: grpc.ServerUnaryCall<{ service?: string }, object>, cb: grpc.sendUnaryData<object>) => {
      const s = statuses.get(call.request.service ?? '');
      if (s === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else cb(null, { status: s });
    },
  });
  const target = host(1, { address: '127.0.0.1', port });
  const hc = start(t, { grpc_health_check: { service_name: 'reviews' } }, [target]);
  await until(hc, target, true);
  statuses.set('reviews', 2);
  let failures = 0;
  hc.on('checked', (h, r) => h === target && r !== 0 && failures++);
  await until(hc, target, false);
  assert.equal(failures, 1);
  statuses.set('reviews', 1);
  await until(hc, target, true);
  const unknown = host(2, { address: '127.0.0.1', port });
  const other = start(t, { grpc_health_check: { service_name: 'ratings' } }, [unknown]);
  const [, result] = await once(other, 'checked');
  assert.equal(result, 1, 'an unknown service is an active failure');
});

test('health_checks config errors name the field', () => {
  assert.match(checkHealthChecks({ health_checks: [{ http_health_check: { path: '/' } }] }).errors.join(), /health_checks\[0\]\.timeout: required/);
  assert.match(checkHealthChecks({ health_checks: [{ ...FAST }] }).errors.join(), /needs exactly one of http_health_check, tcp_health_check, grpc_health_check/);
  assert.match(checkHealthChecks({ health_checks: [{ ...FAST, tcp_health_check: { send: { text: 'zz' } } }] }).errors.join(), /send.text: must be hex-encoded/);
  assert.match(checkHealthChecks({ health_checks: [{ ...FAST, http_health_check: { path: '/', expected_statuses: [{ start: 300, end: 200 }] } }] }).errors.join(), /expected_statuses\[0\]/);
  assert.match(checkHealthChecks({ health_checks: [{ ...FAST, tcp_health_check: {} }, { ...FAST, tcp_health_check: {} }] }).errors.join(), /only one health check per cluster/);
  assert.deepEqual(checkHealthChecks({ health_checks: [{ ...FAST, tcp_health_check: {}, event_log_path: '/tmp/x' }] }).warnings, ['health_checks[0].event_log_path: not supported by Rigging, ignored']);
});
