// A rig proxy process (static bootstrap, HCM tracing with the Zipkin provider) sends its batched
// spans to the collector when it stops, instead of losing the last batch.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { listenLocal } from '../helpers/listen.ts';

const cluster = (name: string, port: number) => ({ name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } });

test('rig proxy flushes batched spans on SIGTERM', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-span-flush-'));
  const spans: { name: string; kind: string; traceId: string }[] = [];
  const collector = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/api/v2/spans') spans.push(...(JSON.parse(body) as typeof spans));
      res.end();
    });
  });
  const app = http.createServer((_q, s) => s.end('ok'));
  const collectorPort = await listenLocal(collector);
  const appPort = await listenLocal(app);
  t.after(() => {
    collector.close();
    app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const boot = {
    node: { id: 'sidecar~127.0.0.1~web-0.default~default.svc.cluster.local', cluster: 'web', metadata: { NAMESPACE: 'default', LABELS: { app: 'web' } } },
    static_resources: {
      listeners: [
        {
          name: 'http',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'outbound_web',
                    route_config: { name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                    tracing: { random_sampling: { value: 100 }, provider: { name: 'envoy.tracers.zipkin', typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig', collector_cluster: 'zipkin', collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON' } } },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [cluster('app', appPort), cluster('zipkin', collectorPort)],
    },
  };
  fs.writeFileSync(path.join(dir, 'b.yaml'), stringify(boot));
  const { process: child, ports, log } = await startRigProxyFromFile(t, path.join(dir, 'b.yaml'), ['--drain-timeout', '0']);
  const r = await fetch(`http://127.0.0.1:${ports.listeners.http}/hello`);
  assert.equal(await r.text(), 'ok');
  child.kill('SIGTERM');
  await new Promise((res) => child.once('exit', res));
  assert.equal(spans.length, 1, log());
  assert.equal(spans[0].kind, 'CLIENT');
  // Envoy's Zipkin default without trace_id_128bit: a 64-bit trace id, 16 hex digits on the wire.
  assert.match(spans[0].traceId, /^[0-9a-f]{16}$/);
});
