// `rig proxy --stats-port`: a real proxy process serves /stats/prometheus on its own port with
// Envoy stats, Istio's TCP metrics (istio.stats network filter before tcp_proxy) and process metrics.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';

const TYPED_STRUCT = 'type.googleapis.com/udpa.type.v1.TypedStruct';

test('rig proxy --stats-port serves Envoy stats, Istio TCP metrics and process metrics', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-stats-port-'));
  // A TCP echo server as the application.
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.after(() => {
    echo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const appPort = (echo.address() as AddressInfo).port;
  const boot = {
    node: { id: 'sidecar~127.0.0.1~mysql-0.db~db.svc.cluster.local', cluster: 'mysql.db', metadata: { NAMESPACE: 'db', WORKLOAD_NAME: 'mysql', LABELS: { app: 'mysql', version: 'v8' }, CLUSTER_ID: 'Kubernetes' } },
    static_resources: {
      listeners: [
        {
          name: 'inbound_tcp',
          traffic_direction: 'INBOUND',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                { name: 'istio.stats', typed_config: { '@type': TYPED_STRUCT, type_url: 'type.googleapis.com/stats.PluginConfig', value: { reporter: 'SERVER' } } },
                { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'inbound|3306||', cluster: 'inbound|3306||' } },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'inbound|3306||', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'inbound|3306||', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: appPort } } } }] }] } }],
    },
  };
  const file = path.join(dir, 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(boot));
  const { ports } = await startRigProxyFromFile(t, file);
  assert.ok(ports.stats > 0 && ports.stats !== ports.admin);

  // One TCP connection: 11 bytes each way.
  await new Promise<void>((resolve, reject) => {
    const c = net.connect(ports.listeners.inbound_tcp, '127.0.0.1', () => c.write('hello mesh!'));
    let got = '';
    c.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= 11) c.end();
    });
    c.on('close', () => resolve());
    c.on('error', reject);
  });

  let text = '';
  for (let i = 0; i < 50; i++) {
    text = await (await fetch(`http://127.0.0.1:${ports.stats}/stats/prometheus`)).text();
    if (/^istio_tcp_connections_closed_total\{.*\} 1$/m.test(text)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const series = (name: string) => new RegExp(`^${name}\\{([^}]*)\\} (\\d+)$`, 'm').exec(text);
  for (const [name, value] of [
    ['istio_tcp_connections_opened_total', '1'],
    ['istio_tcp_connections_closed_total', '1'],
    ['istio_tcp_received_bytes_total', '11'],
    ['istio_tcp_sent_bytes_total', '11'],
  ]) {
    const m = series(name);
    assert.ok(m, `${name} in\n${text.slice(0, 2000)}`);
    assert.equal(m[2], value, name);
    assert.match(m[1], /reporter="destination"/);
    assert.match(m[1], /destination_workload="mysql",destination_workload_namespace="db",destination_principal="unknown",destination_app="mysql",destination_version="v8"/);
    assert.match(m[1], /source_workload="unknown"/);
    assert.match(m[1], /request_protocol="tcp",connection_security_policy="none",response_flags="-"/);
  }
  assert.match(text, /^# TYPE envoy_tcp_downstream_cx_total counter$/m);
  assert.match(text, /^process_cpu_seconds_total \d/m);
  // The admin port serves the same scrape.
  assert.match(await (await fetch(`http://127.0.0.1:${ports.admin}/stats/prometheus`)).text(), /^istio_tcp_connections_opened_total\{/m);
  // Anything else on the stats port is a 404.
  assert.equal((await fetch(`http://127.0.0.1:${ports.stats}/config_dump`)).status, 404);
});
