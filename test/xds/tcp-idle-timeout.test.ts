// DestinationRule connectionPool.tcp.idleTimeout as istiod applies it: the idle_timeout of the
// outbound tcp_proxy filters sending to the rule's host (the rule's top-level trafficPolicy; the
// first route's destination decides; maxConnectionDuration likewise their
// max_downstream_connection_duration), and the cluster's HTTP idle_timeout when http.idleTimeout
// is unset. Then through the control plane and a real `rig proxy` gateway: an idle TCP connection
// is closed after the timeout, one that keeps sending is not.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { CLUSTER_TYPE, LISTENER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { startEdgeGateway } from '../helpers/edge-gateway.ts';
import { listenLocal } from '../helpers/listen.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { waitFor } from '../helpers/wait.ts';
import { assertEnvoyResource, buildPush, gatewayProxy, parseYaml, podSidecar } from './fixtures.ts';

const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: db, namespace: default }
spec: { selector: { app: db }, ports: [{ name: tcp, port: 27017 }] }
---
apiVersion: v1
kind: Service
metadata: { name: cache, namespace: default }
spec: { selector: { app: cache }, ports: [{ name: tcp, port: 6379 }, { name: http, port: 8080 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: default }
spec:
  host: db
  trafficPolicy: { connectionPool: { tcp: { idleTimeout: 90s, maxConnectionDuration: 1h } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: cache, namespace: default }
spec:
  host: cache
  trafficPolicy: { connectionPool: { tcp: { idleTimeout: 5m }, http: { idleTimeout: 30s } } }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: tcp-gw, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 31400, name: tcp, protocol: TCP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: default }
spec:
  hosts: [db]
  gateways: [mesh, tcp-gw]
  tcp:
  - match: [{ gateways: [tcp-gw], port: 31400 }]
    route: [{ destination: { host: db, port: { number: 27017 } } }]
  - match: [{ gateways: [mesh], destinationSubnets: [10.9.0.0/16] }]
    route: [{ destination: { host: cache, port: { number: 6379 } } }]
`;

function tcpProxies(listener: EnvoyJson): EnvoyJson[] {
  return (listener.filter_chains as EnvoyJson[]).flatMap((c) => (c.filters as EnvoyJson[]).filter((f) => f.name === 'envoy.filters.network.tcp_proxy').map((f) => f.typed_config as EnvoyJson));
}

test('tcp.idleTimeout: the idle_timeout of the tcp_proxy filters to the rule host, at sidecars and gateways; the cluster idle_timeout without http.idleTimeout', () => {
  const client = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.80');
  const gw = gatewayProxy();
  const push = buildPush(parseYaml(CONFIG), [client, gw]);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, client, undefined);
  const vip = (h: string) => push.serviceByHost.get(`${h}.default.svc.cluster.local`)!.address;
  const db = listeners.find((l) => l.name === `${vip('db')}_27017`)!;
  assertEnvoyResource(LISTENER_TYPE, db);
  // The destinationSubnets chain goes to cache (its rule's 5m), the service's own chain to db (90s).
  assert.deepEqual(tcpProxies(db).map((p) => [p.cluster, p.idle_timeout, p.max_downstream_connection_duration]), [
    ['outbound|6379||cache.default.svc.cluster.local', '300s', undefined],
    ['outbound|27017||db.default.svc.cluster.local', '90s', '3600s'],
  ]);
  const cache = listeners.find((l) => l.name === `${vip('cache')}_6379`)!;
  assert.deepEqual(tcpProxies(cache).map((p) => p.idle_timeout), ['300s']);
  // Inbound and passthrough filters keep Envoy's default.
  for (const l of listeners.filter((x) => x.name === 'virtualInbound' || x.name === 'virtualOutbound')) for (const p of tcpProxies(l)) assert.equal(p.idle_timeout, undefined, String(l.name));

  const gwListener = GENERATORS[LISTENER_TYPE].generate(push, gw, undefined).find((l) => l.name === '0.0.0.0_31400')!;
  assert.deepEqual(tcpProxies(gwListener).map((p) => [p.cluster, p.idle_timeout]), [['outbound|27017||db.default.svc.cluster.local', '90s']]);

  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, client, undefined);
  const common = (name: string) => {
    const c = clusters.find((x) => x.name === name)!;
    assertEnvoyResource(CLUSTER_TYPE, c);
    const opts = (c.typed_extension_protocol_options as EnvoyJson)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'] as EnvoyJson;
    return (opts.common_http_protocol_options as EnvoyJson).idle_timeout;
  };
  assert.equal(common('outbound|27017||db.default.svc.cluster.local'), '90s');
  assert.equal(common('outbound|8080||cache.default.svc.cluster.local'), '30s', 'http.idleTimeout wins');
});

const e2eConfig = (echoPort: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: istio-system }
spec:
  hosts: [echo.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7000, name: tcp, protocol: TCP }]
  endpoints: [{ address: 127.0.0.1, ports: { tcp: ${echoPort} } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: istio-system }
spec:
  host: echo.example.com
  trafficPolicy: { connectionPool: { tcp: { idleTimeout: 2s } } }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 31400, name: tcp, protocol: TCP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: istio-system }
spec:
  hosts: ['*']
  gateways: [gw]
  tcp: [{ route: [{ destination: { host: echo.example.com, port: { number: 7000 } } }] }]
`;

interface Conn {
  socket: net.Socket;
  received(): string;
  closed(): boolean;
}

function connect(port: number): Conn {
  const socket = net.connect(port, '127.0.0.1');
  let data = '';
  let closed = false;
  socket.on('data', (c) => (data += c.toString()));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  return { socket, received: () => data, closed: () => closed };
}

/** A TCP echo server whose connections are cut when the test ends (a failing run leaves the proxy's open). */
async function startEcho(t: { after(fn: () => unknown): void }): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(d));
  });
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  return listenLocal(server, t);
}

test('through the control plane and a rig gateway: an idle TCP connection is closed after tcp.idleTimeout, a busy one is not', async (t) => {
  const echoPort = await startEcho(t);
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-tcp-idle-', config: e2eConfig(echoPort) });
  const gw = await startEdgeGateway(t, mesh, { name: 'gw-tcp-idle', serverPort: 31400 });
  const ready = await waitFor(() => `the gateway relaying TCP to the echo server\n${gw.proxy.log()}`, async () => {
    const c = connect(gw.port);
    c.socket.write('hello');
    const echoed = await waitFor('echo', () => (c.received() === 'hello' ? true : c.closed() ? false : undefined), 5_000).catch(() => false);
    if (echoed) return c;
    c.socket.destroy();
    return undefined;
  }, 60_000);
  t.after(() => ready.socket.destroy());

  // Kept busy: a byte every 250 ms for three timeouts' worth, echoed back each time.
  const busy = connect(gw.port);
  t.after(() => busy.socket.destroy());
  for (let i = 0; i < 24; i++) {
    busy.socket.write('.');
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(busy.closed(), false, `the busy connection closed after ${i + 1} writes`);
  }
  await waitFor('the last write echoed', () => (busy.received().length === 24 ? true : undefined), 5_000);

  // Idle since its first echo: the gateway closes it (Envoy's default would keep it for an hour).
  await waitFor('the idle connection closed by the gateway', () => (ready.closed() ? true : undefined), 30_000);
});
