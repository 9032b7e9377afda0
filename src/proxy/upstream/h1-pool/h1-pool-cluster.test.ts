// The HTTP/1.1 pool as a cluster's pool: Cluster.pool() hands out an H1Pool for HTTP/1.1 and
// undici's for HTTP/2, the cx stats follow its connections, and a cluster replaced by CDS still
// serves its retries on a pool that closes once they are done.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Cluster } from '../cluster.ts';
import { compileCluster } from '../cluster-config.ts';
import { Issues } from '../../config/reader.ts';
import { Stats } from '../../stats/stats.ts';
import { SecretStore } from '../../tls/secrets.ts';
import { H1Pool } from './h1-pool.ts';
import { send } from './h1-pool-test-kit.ts';

function cluster(port: number, extra: Record<string, unknown> = {}): { c: Cluster; stats: Stats } {
  const issues = new Issues();
  const raw = {
    name: 'up',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: 'up', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...extra,
  };
  const config = compileCluster(raw, 'clusters[0]', issues);
  assert.deepEqual(issues.errors, []);
  const stats = new Stats();
  const c = new Cluster(config, stats, new SecretStore(), issues);
  c.setEndpoints(config.loadAssignment?.endpoints ?? []);
  return { c, stats };
}

const stat = (s: Stats, name: string): number => s.all().find((x) => x.name === `cluster.up.${name}`)?.value ?? 0;

test('an HTTP/1.1 cluster pool counts its connections; an h2 cluster keeps undici', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const { c, stats } = cluster(port);
  t.after(() => c.destroy());
  const host = c.hosts()[0];
  const pool = c.pool(host, false);
  assert.ok(pool instanceof H1Pool);
  assert.equal(c.pool(host, false), pool, 'one pool per host');
  assert.equal((await send(pool)).body, 'ok');
  assert.equal(stat(stats, 'upstream_cx_total'), 1);
  assert.equal(stat(stats, 'upstream_cx_active'), 1);
  server.closeAllConnections();
  for (let i = 0; i < 100 && stat(stats, 'upstream_cx_active') > 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(stat(stats, 'upstream_cx_active'), 0);
  assert.equal(stat(stats, 'upstream_cx_destroy'), 1);
  assert.ok(!(c.pool(host, true) instanceof H1Pool));
});

test('a refused connection counts upstream_cx_connect_fail; a closed cluster serves a retry, then closes that pool', async (t) => {
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const { c: refused, stats: rs } = cluster(deadPort);
  t.after(() => refused.destroy());
  const r = await send(refused.pool(refused.hosts()[0], false));
  assert.equal(r.error && (r.error as { code?: string }).code, 'ECONNREFUSED');
  assert.equal(stat(rs, 'upstream_cx_connect_fail'), 1);

  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    sockets.add(req.socket);
    res.end('late');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { c, stats } = cluster((server.address() as AddressInfo).port);
  c.close();
  const pool = c.pool(c.hosts()[0], false) as H1Pool;
  assert.equal((await send(pool)).body, 'late');
  for (let i = 0; i < 100 && pool.size > 0; i++) await new Promise((res) => setTimeout(res, 5));
  assert.equal(pool.size, 0, 'the pool closed once its request was done');
  assert.equal(stat(stats, 'upstream_cx_active'), 0);
});
