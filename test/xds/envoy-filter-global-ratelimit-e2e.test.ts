// Istio's "Enabling Rate Limits using Envoy" task (global rate limit) through the real control plane
// and a real ingress gateway (`rig proxy --mode router`): the task's EnvoyFilters as written
// (examples/ratelimit-service/mesh/filter-ratelimit.yaml: the rate limit filter inserted before the
// gateway's router, failure_mode_deny, the service's cluster outbound|8081||ratelimit.default...;
// the gateway's virtual hosts' rate_limits sending the path as PATH) and the example rate limit
// service (examples/ratelimit-service, a real process) with the task's configuration:
// /productpage 1 request a minute, any other path 100. With the service stopped, failure_mode_deny
// refuses requests with 500.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { REPO_ROOT, stopProcess } from '../helpers/cli.ts';
import { edgeToBackend, startEdgeGateway } from '../helpers/edge-gateway.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { until, waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const EXAMPLE = path.join(REPO_ROOT, 'examples/ratelimit-service');

const RATELIMIT_SERVICE = (port: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratelimit, namespace: default }
spec:
  hosts: [ratelimit.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8081, name: grpc-port, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, ports: { grpc-port: ${port} } }]
`;

test("Istio's global rate limit task: the gateway asks the rate limit service per path; /productpage gets 429 past 1 a minute; failure_mode_deny without the service", async (t) => {
  const rlsPort = await freePort();
  const rls = spawn(process.execPath, ['ratelimit-service.ts', 'config'], { cwd: EXAMPLE, env: { ...process.env, HOST: '127.0.0.1', PORT_GRPC: String(rlsPort) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let rlsOut = '';
  rls.stdout.on('data', (d: Buffer) => (rlsOut += d.toString()));
  rls.stderr.on('data', (d: Buffer) => (rlsOut += d.toString()));
  t.after(() => stopProcess(rls));
  await until(() => `the rate limit service to listen (${rlsOut})`, () => rlsOut.includes('rate limit service (gRPC) on'));

  const app = await startUpstream('productpage');
  t.after(() => app.close());
  const taskFilters = fs.readFileSync(path.join(EXAMPLE, 'mesh/filter-ratelimit.yaml'), 'utf8');
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-global-ratelimit-', config: edgeToBackend(app.port) + '---' + RATELIMIT_SERVICE(rlsPort) + '---\n' + taskFilters, controlPlane: { debounceMs: 10 } });
  const gw = await startEdgeGateway(t, mesh, { name: 'istio-ingressgateway' });

  // Until the gateway has the filter and the service's cluster, requests are not counted.
  await waitFor('a request through the gateway counted by the rate limit service', async () => {
    const r = await request(gw.port, { path: '/warmup' }).catch(() => undefined);
    return r?.status === 200 && rlsOut.includes('ratelimit PATH=/warmup OK') ? r : undefined;
  });

  const statuses: number[] = [];
  const replies = [];
  for (let i = 0; i < 3; i++) {
    const r = await request(gw.port, { path: '/productpage' });
    statuses.push(r.status);
    replies.push(r);
  }
  // The limit is 1 a minute in fixed windows: the first request passes, a later one is refused
  // (the second, unless a minute began between them).
  assert.equal(statuses[0], 200, statuses.join(' '));
  const refused = replies.find((r) => r.status === 429);
  assert.ok(refused, `a request past the limit is refused: ${statuses.join(' ')}\n${rlsOut}`);
  assert.equal(refused.headers['x-envoy-ratelimited'], 'true');
  assert.equal(app.requests.filter((r) => r.url === '/productpage').length, statuses.filter((s) => s === 200).length, 'refused requests never reach the app');
  for (let i = 0; i < 3; i++) assert.equal((await request(gw.port, { path: '/api/v1/products' })).status, 200, 'other paths: 100 a minute each');
  assert.match(rlsOut, /ratelimit PATH=\/productpage OVER_LIMIT \(0 left of 1\/minute\)/);

  await stopProcess(rls);
  const down = await request(gw.port, { path: '/api/v1/products' });
  assert.equal(down.status, 500, 'failure_mode_deny: true refuses requests the service cannot judge');
});
