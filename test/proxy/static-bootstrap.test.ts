// `rig proxy -c bootstrap.yaml` as a process: Envoy's documented front-proxy and weighted-split
// bootstraps run unchanged, the admin API answers, bad bootstraps fail with paths, SIGTERM drains.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { runRig } from '../helpers/cli.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { request, startUpstream, deadPort } from './harness.ts';
import { parseBootstrap, readBootstrapFile } from '../../src/proxy/bootstrap/bootstrap.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function frontProxy(listenPort: number, clusters: Record<string, unknown>[], routes: Record<string, unknown>[], accessLog: Record<string, unknown>[] = []) {
  // As in Envoy's "quick start" static configuration.
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 9901 } } },
    static_resources: {
      listeners: [
        {
          name: 'listener_0',
          address: { socket_address: { address: '127.0.0.1', port_value: listenPort } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'ingress_http',
                    access_log: accessLog,
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                    route_config: { name: 'local_route', virtual_hosts: [{ name: 'local_service', domains: ['*'], routes }] },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters,
    },
  };
}

function cluster(name: string, port: number, type = 'LOGICAL_DNS') {
  return {
    name,
    type,
    connect_timeout: '0.25s',
    dns_lookup_family: 'V4_ONLY',
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: type === 'STATIC' ? '127.0.0.1' : 'localhost', port_value: port } } } }] }] },
  };
}

test('Envoy quick-start front proxy and a weighted split run unchanged; admin endpoints answer; SIGTERM drains', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-proxy-'));
  const v1 = await startUpstream('v1');
  const v2 = await startUpstream('v2');
  let slowSeen = false;
  const slow = await startUpstream('slow', (_q, res) => {
    slowSeen = true;
    setTimeout(() => res.end('finished'), 300);
    return true;
  });
  const listenPort = await deadPort();
  const boot = frontProxy(
    listenPort,
    [cluster('service_v1', v1.port), cluster('service_v2', v2.port, 'STRICT_DNS'), cluster('slow', slow.port, 'STATIC')],
    [
      { match: { prefix: '/slow' }, route: { cluster: 'slow' } },
      { match: { prefix: '/split' }, route: { weighted_clusters: { clusters: [{ name: 'service_v1', weight: 50 }, { name: 'service_v2', weight: 50 }] } } },
      { match: { prefix: '/' }, route: { host_rewrite_literal: 'www.envoyproxy.io', cluster: 'service_v1' } },
    ],
    [
      { name: 'envoy.access_loggers.stdout', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog' } },
      { name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: path.join(dir, 'access.log') } },
      { name: 'json', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: path.join(dir, 'access.json'), log_format: { json_format: { code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%', flags: '%RESPONSE_FLAGS%', upstream: '%UPSTREAM_CLUSTER%' } } } },
    ],
  );
  const file = path.join(dir, 'envoy.yaml');
  fs.writeFileSync(file, stringify(boot));
  t.after(async () => {
    await v1.close();
    await v2.close();
    await slow.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const { process: child, ports, stdout } = await startRigProxyFromFile(t, file, ['--drain-timeout', '3']);
  assert.equal(ports.listeners.listener_0, listenPort);
  const r = await request(listenPort, { path: '/' });
  assert.equal(r.status, 200);
  assert.equal(r.json().headers.host, 'www.envoyproxy.io');
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) seen.add((await request(listenPort, { path: '/split' })).json().server);
  assert.deepEqual([...seen].sort(), ['v1', 'v2']);

  // Access logs: Envoy's default text format on stdout and in a file, and a JSON format.
  let log = '';
  for (let i = 0; i < 200 && log.split('\n').length < 42; i++) {
    await new Promise((r) => setTimeout(r, 25));
    log = fs.existsSync(path.join(dir, 'access.log')) ? fs.readFileSync(path.join(dir, 'access.log'), 'utf8') : '';
  }
  assert.match(log, /^\[\d{4}-\d\d-\d\dT[^\]]+\] "GET \/split HTTP\/1\.1" 200 - 0 \d+ \d+ \d+ "-" "-" "[0-9a-f-]{36}" "127\.0\.0\.1:\d+" "127\.0\.0\.1:\d+"$/m);
  const json = fs.readFileSync(path.join(dir, 'access.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(json[0], { code: 200, path: '/', flags: '-', upstream: 'service_v1' });
  assert.match(stdout(), /"GET \/ HTTP\/1\.1" 200 /);

  assert.equal((await request(ports.admin, { path: '/ready' })).body, 'LIVE\n');
  assert.equal((await request(ports.ready, { path: '/healthz/ready' })).status, 200);
  const stats = (await request(ports.admin, { path: '/stats?format=json' })).json<{ stats: { name: string; value: number }[] }>().stats;
  const v = (n: string) => stats.find((s) => s.name === n)?.value;
  assert.equal(v('http.ingress_http.downstream_rq_total'), 41);
  assert.equal((v('cluster.service_v1.upstream_rq_2xx') ?? 0) + (v('cluster.service_v2.upstream_rq_2xx') ?? 0), 41);
  assert.match((await request(ports.admin, { path: '/stats' })).body, /^cluster\.service_v1\.upstream_rq_total: \d+$/m);
  const dump = (await request(ports.admin, { path: '/config_dump' })).json<{ configs: { '@type': string; static_listeners?: unknown[]; static_clusters?: unknown[] }[] }>();
  assert.deepEqual(dump.configs.map((c) => c['@type'].split('.').pop()), ['BootstrapConfigDump', 'ClustersConfigDump', 'ListenersConfigDump', 'RoutesConfigDump', 'SecretsConfigDump']);
  assert.equal(dump.configs[1].static_clusters!.length, 3);
  assert.match((await request(ports.admin, { path: '/clusters' })).body, new RegExp(`service_v1::127\\.0\\.0\\.1:${v1.port}::health_flags::healthy`));
  assert.match((await request(ports.admin, { path: '/listeners' })).body, new RegExp(`listener_0::127\\.0\\.0\\.1:${listenPort}`));
  assert.equal((await request(ports.admin, { path: '/server_info' })).json<{ state: string }>().state, 'LIVE');
  const memory = (await request(ports.admin, { path: '/memory' })).json<{
    allocated: string;
    heap_size: string;
    total_physical_bytes: string;
    resident_by_kind: Record<string, number>;
    heap_spaces: Record<string, { physical: number }>;
  }>();
  const rss = Number(memory.total_physical_bytes);
  assert.ok(Number(memory.allocated) > 1e6 && Number(memory.allocated) <= Number(memory.heap_size), JSON.stringify(memory));
  const residentSum = Object.values(memory.resident_by_kind).reduce((a, b) => a + b, 0);
  assert.ok(residentSum <= rss * 1.1 && residentSum >= rss * 0.8, `resident by kind ${residentSum} against RSS ${rss}`);
  assert.ok(memory.heap_spaces.old_space!.physical > 0 && memory.heap_spaces.old_space!.physical < memory.resident_by_kind.anonymous!, JSON.stringify(memory));
  assert.equal((await request(ports.admin, { path: '/healthcheck/fail', method: 'POST' })).status, 200);
  assert.equal((await request(ports.ready, { path: '/healthz/ready' })).status, 503);
  await request(ports.admin, { path: '/healthcheck/ok', method: 'POST' });
  assert.equal((await request(ports.admin, { path: '/logging?level=debug', method: 'POST' })).status, 200);

  // SIGTERM with a request in flight: it completes, new connections are refused, the process exits 0.
  const pending = request(listenPort, { path: '/slow' });
  while (!slowSeen) await new Promise((r) => setTimeout(r, 5));
  child.kill('SIGTERM');
  const done = await pending;
  assert.equal(done.status, 200);
  assert.equal(done.body, 'finished');
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0);
  await assert.rejects(request(listenPort, { path: '/' }), /ECONNREFUSED/);
});

test('an invalid bootstrap fails with every problem and its path', async (t) => {
  const dir = tempDir(t, 'rig-proxy-');
  const boot = frontProxy(1, [{ ...cluster('c', 1, 'STATIC'), conect_timeout: '1s' }], [{ match: { prefix: '/' }, route: { cluster: 'c' } }]);
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, stringify(boot));
  const r = await runRig(['proxy', '-c', file, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /static_resources\.clusters\[0\]\.conect_timeout: unknown field/);
  // The same checks in-process (a process start is slow): a bad regex deep in a route, a missing file.
  const boot2 = frontProxy(1, [cluster('c', 1, 'STATIC')], [{ match: { safe_regex: { regex: '[' } }, route: { cluster: 'c' } }]);
  const parsed = parseBootstrap(boot2, 'test');
  const errs = new ProxyRuntime({ node: parsed.node }).addStatic(parsed.staticResources);
  assert.match(errs.join('\n'), /listener "listener_0": .*route_config\.virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex: invalid regular expression/);
  assert.throws(() => readBootstrapFile(path.join(dir, 'missing.yaml')), /cannot read bootstrap/);
});
