// A per-try timeout is retried only when the retry policy would retry a reset, as Envoy does
// (router.cc onPerTryTimeoutCommon → maybeRetryReset(LocalReset); retry_state_impl.cc
// wouldRetryFromReset): reset, 5xx and gateway-error retry it; connect-failure, refused-stream,
// retriable-status-codes and the gRPC ones do not, so Istio's default retry_on never retries a
// per-try timeout. Through a real `rig proxy` from a static bootstrap and an upstream that never answers.
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
const ISTIO_DEFAULT = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

test('a per-try timeout is retried only by retry_on values that retry a reset', async (t) => {
  const held = new Set<http.ServerResponse>();
  const app = http.createServer((_req, res) => held.add(res)); // never answered
  const appPort = await listenLocal(app);
  t.after(() => {
    for (const res of held) res.destroy();
    app.closeAllConnections();
  });
  t.after(() => new Promise<void>((r) => app.close(() => r())));

  const cases: [string, string][] = [
    ['istio-default', ISTIO_DEFAULT],
    ['connect-failure', 'connect-failure'],
    ['refused-stream', 'refused-stream'],
    ['retriable-status-codes', 'retriable-status-codes'],
    ['reset', 'reset'],
    ['5xx', '5xx'],
    ['gateway-error', 'gateway-error'],
  ];
  const routes = cases.map(([name, retryOn]) => ({
    match: { prefix: `/${name}` },
    route: { cluster: name, timeout: '10s', retry_policy: { retry_on: retryOn, num_retries: 2, per_try_timeout: '0.1s', retriable_status_codes: [503], retry_back_off: { base_interval: '0.001s' } } },
  }));
  const clusters = cases.map(([name]) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: appPort } } } }] }] },
  }));
  const boot = {
    static_resources: {
      listeners: [
        {
          name: 'http',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'ingress', route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes }] }, http_filters: [ROUTER] } }] }],
        },
      ],
      clusters,
    },
  };
  const file = path.join(tempDir(t, 'rig-per-try-retry-on-'), 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(boot));
  const { ports } = await startRigProxyFromFile(t, file);

  const statuses: Record<string, number> = {};
  for (const [name] of cases) {
    const res = await fetch(`http://127.0.0.1:${ports.listeners.http}/${name}`);
    await res.arrayBuffer();
    statuses[name] = res.status;
  }
  const body = JSON.parse(await (await fetch(`http://127.0.0.1:${ports.admin}/stats?format=json&filter=${encodeURIComponent('^cluster\\.')}`)).text()) as { stats: { name?: string; value?: number }[] };
  const stat = (name: string) => body.stats.find((s) => s.name === name)?.value ?? 0;

  const seen = (name: string) => ({ status: statuses[name], perTryTimeouts: stat(`cluster.${name}.upstream_rq_per_try_timeout`), retries: stat(`cluster.${name}.upstream_rq_retry`) });
  for (const name of ['istio-default', 'connect-failure', 'refused-stream', 'retriable-status-codes']) {
    assert.deepEqual(seen(name), { status: 504, perTryTimeouts: 1, retries: 0 }, name);
  }
  for (const name of ['reset', '5xx', 'gateway-error']) {
    assert.deepEqual(seen(name), { status: 504, perTryTimeouts: 3, retries: 2 }, name);
  }
});

test('reset-before-request retries a reset only while nothing was sent upstream', async (t) => {
  const held = new Set<http.ServerResponse>();
  const app = http.createServer((req, res) => {
    if (req.url!.startsWith('/drop')) req.socket.destroy(); // reset after the request was written
    else held.add(res); // never answered
  });
  app.on('clientError', () => undefined);
  const appPort = await listenLocal(app);
  t.after(() => {
    for (const res of held) res.destroy();
    app.closeAllConnections();
  });
  t.after(() => new Promise<void>((r) => app.close(() => r())));
  const dead = net.createServer();
  const deadPort = await listenLocal(dead);
  await new Promise<void>((r) => dead.close(() => r()));

  const rbr = (extra: Record<string, unknown> = {}) => ({ retry_on: 'reset-before-request', num_retries: 1, retry_back_off: { base_interval: '0.001s' }, ...extra });
  const routes = [
    { match: { prefix: '/refused' }, route: { cluster: 'dead', retry_policy: rbr() } },
    { match: { prefix: '/drop' }, route: { cluster: 'drop', retry_policy: rbr() } },
    { match: { prefix: '/written' }, route: { cluster: 'written', timeout: '10s', retry_policy: rbr({ per_try_timeout: '0.1s' }) } },
    // One connection, held by /hold: a /pending attempt waits for it, its request never written.
    { match: { prefix: '/hold' }, route: { cluster: 'one', timeout: '0s', retry_policy: { num_retries: 0 } } },
    { match: { prefix: '/pending' }, route: { cluster: 'one', timeout: '10s', retry_policy: rbr({ per_try_timeout: '0.1s' }) } },
  ];
  const cluster = (name: string, port: number, extra: Record<string, unknown> = {}) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...extra,
  });
  const boot = {
    static_resources: {
      listeners: [
        {
          name: 'http',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'ingress', route_config: { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes }] }, http_filters: [ROUTER] } }] }],
        },
      ],
      clusters: [cluster('dead', deadPort), cluster('drop', appPort), cluster('written', appPort), cluster('one', appPort, { circuit_breakers: { thresholds: [{ max_connections: 1 }] } })],
    },
  };
  const file = path.join(tempDir(t, 'rig-reset-before-request-'), 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(boot));
  const { ports } = await startRigProxyFromFile(t, file);
  const port = ports.listeners.http;
  const status = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`);
    await res.arrayBuffer();
    return res.status;
  };

  assert.equal(await status('/refused'), 503);
  assert.equal(await status('/drop'), 503);
  assert.equal(await status('/written'), 504);
  const hold = fetch(`http://127.0.0.1:${port}/hold`).catch(() => undefined);
  await waitFor('the held request', () => (held.size === 2 ? true : undefined));
  assert.equal(await status('/pending'), 504);
  for (const res of held) res.destroy();
  await hold;

  const body = JSON.parse(await (await fetch(`http://127.0.0.1:${ports.admin}/stats?format=json&filter=${encodeURIComponent('^cluster\\.')}`)).text()) as { stats: { name?: string; value?: number }[] };
  const retries = (c: string) => body.stats.find((s) => s.name === `cluster.${c}.upstream_rq_retry`)?.value ?? 0;
  // A refused connection sent nothing: retried. A reset or a per-try timeout after the request was written: not.
  assert.deepEqual({ dead: retries('dead'), drop: retries('drop'), written: retries('written') }, { dead: 1, drop: 0, written: 0 });
  // A per-try timeout while waiting for a connection: nothing was sent, retried.
  assert.equal(retries('one'), 1);
});
