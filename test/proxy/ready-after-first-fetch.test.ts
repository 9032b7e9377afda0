// A proxy fed by ADS is not ready before its first clusters and listeners, as Envoy's init manager
// and Istio's bootstrap (cds_config / lds_config with initial_fetch_timeout 0s) have it: it was
// LIVE, /healthz/ready 200, from its start, before any config (and its start-up heap trim ran
// then, so the Envoy types were parsed twice on the way to serving).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { edgeGatewayArgs, edgeGatewayYaml } from '../helpers/edge-gateway.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startRigProxy, startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { deadPort, request } from './harness.ts';

const GATEWAY = edgeGatewayYaml('{ directResponse: { status: 200, body: { string: edge } } }');
const gatewayArgs = (port: number) => edgeGatewayArgs('ingress', port);

test('rig proxy --xds-address: INITIALIZING until its first config, then ready and serving it', async (t) => {
  const unreachable = startRigProxy(t, gatewayArgs(await deadPort()), { xdsPort: await deadPort() });
  const idle = await unreachable.started();
  assert.equal((await request(idle.ready, { path: '/healthz/ready' })).status, 503, 'no control plane, no config: not ready');
  assert.equal((await request(idle.admin, { path: '/ready' })).body, 'INITIALIZING\n');

  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-ready-', config: GATEWAY });
  const port = await deadPort();
  const ports = await startRigProxy(t, gatewayArgs(port), { xdsPort: mesh.cp.ports.xds }).started();
  await waitFor('the gateway ready', async () => ((await request(ports.ready, { path: '/healthz/ready' })).status === 200 ? true : undefined));
  // Ready means its listeners are there: the first request after it is served.
  const r = await request(port, { path: '/' });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'edge');
});

test('a bootstrap file: initial_fetch_timeout bounds the wait for the first clusters and listeners', async (t) => {
  const dir = tempDir(t, 'rig-first-fetch-');
  const bootstrap = {
    node: { id: 'router~127.0.0.1~gw.default~default.svc.cluster.local', cluster: 'gw' },
    dynamic_resources: {
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
      cds_config: { ads: {}, initial_fetch_timeout: '0.5s', resource_api_version: 'V3' },
      lds_config: { ads: {}, initial_fetch_timeout: '0.5s', resource_api_version: 'V3' },
    },
    static_resources: { clusters: [{ name: 'xds-grpc', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } }] }] } }] },
  };
  const file = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const { ports } = await startRigProxyFromFile(t, file);
  await waitFor('the proxy ready once both initial fetches timed out', async () => ((await request(ports.ready, { path: '/healthz/ready' })).status === 200 ? true : undefined));
});
