// Interop: a proxyless gRPC client built with @grpc/grpc-js-xds discovers a service through our
// control plane the way Istio serves proxyless gRPC (GENERATOR: grpc, target xds:///host:port),
// follows an 80/20 weighted split between two real server versions, and a header match pins v2.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { parseYaml } from './fixtures.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';

const METHOD = '/rig.test.Echo/Who';
const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };

function echoServer(t: TestContext, version: string): Promise<number> {
  return startGrpcServer(t, { Who: { path: METHOD, requestStream: false, responseStream: false, ...raw } } as unknown as grpc.ServiceDefinition, {
    Who: (_call: unknown, cb: (err: null, res: Buffer) => void) => cb(null, Buffer.from(version)),
  });
}

function call(client: grpc.Client, md: grpc.Metadata = new grpc.Metadata()): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(METHOD, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), md, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(String(res))));
  });
}

test('grpc-js-xds follows our VirtualService: 80/20 split within tolerance, header match pins v2', async (t) => {
  const v1 = await echoServer(t, 'v1');
  const v2 = await echoServer(t, 'v2');
  const store = new MemoryConfigStore();
  store.apply(
    parseYaml(`
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec: { selector: { app: echo }, ports: [{ name: grpc, port: 7070 }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: echo-v1, namespace: default }
spec: { address: 127.0.0.1, ports: { grpc: ${v1} }, labels: { app: echo, version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: echo-v2, namespace: default }
spec: { address: 127.0.0.1, ports: { grpc: ${v2} }, labels: { app: echo, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: default }
spec:
  host: echo.default.svc.cluster.local
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: default }
spec:
  hosts: [echo.default.svc.cluster.local]
  http:
  - match: [{ headers: { x-version: { exact: v2 } } }]
    route: [{ destination: { host: echo.default.svc.cluster.local, subset: v2 } }]
  - route:
    - { destination: { host: echo.default.svc.cluster.local, subset: v1 }, weight: 80 }
    - { destination: { host: echo.default.svc.cluster.local, subset: v2 }, weight: 20 }
`),
  );
  const cp = await startControlPlane({ store, xdsPort: 0, monitoringPort: 0, debounceMs: 10 });
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${cp.ports.xds}`, channel_creds: [{ type: 'insecure' }], server_features: [] }],
    node: { id: 'sidecar~127.0.0.1~echo-client-0.default~default.svc.cluster.local', locality: {}, metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: { app: 'echo-client' } } },
  });
  grpcXds.register();
  const client = new grpc.Client('xds:///echo.default.svc.cluster.local:7070', grpc.credentials.createInsecure());
  t.after(async () => {
    client.close();
    await cp.stop();
  });

  const N = 600;
  const counts: Record<string, number> = { v1: 0, v2: 0 };
  for (let i = 0; i < N; i++) counts[await call(client)]++;
  // Binomial(600, 0.2): mean 120, sd 9.8; ±4.5 sd.
  assert.ok(counts.v2 > 76 && counts.v2 < 164, `v2 got ${counts.v2} of ${N}`);
  assert.equal(counts.v1 + counts.v2, N);

  const md = new grpc.Metadata();
  md.set('x-version', 'v2');
  for (let i = 0; i < 50; i++) assert.equal(await call(client, md), 'v2');

  // The proxy shows up in the control plane's status as a proxyless client.
  const syncz = (await (await fetch(`http://127.0.0.1:${cp.ports.monitoring}/debug/syncz`)).json()) as { proxy: string; listener_status: string }[];
  assert.equal(syncz[0].proxy, 'echo-client-0.default');
  assert.equal(syncz[0].listener_status, 'SYNCED');
});
