// WorkloadGroup health end to end, as Istio runs it: the VM's own `rig proxy` (its agent) runs the
// group's probe beside the application and reports over its ADS stream (istio.io/health); the
// control plane keeps the workload in EDS only while it is healthy. Real processes and sockets:
// the control plane with its CA, the VM's sidecar, a client sidecar whose outbound proxy reaches
// the VM's service; the probe is an exec (`test -f <file>`) and an httpGet. The VM connects to ADS
// over TLS with its bootstrap token, as an Istio VM does: only a proven identity of the group's
// namespace and service account may register under it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ENDPOINT_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { freePort } from '../../src/local/ports.ts';
import { AdsClient, type AdsResponse } from '../../src/xds/ads-client.ts';
import { startMeshControlPlane, type MeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startRigProxy, startSidecar } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until, waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: vm-app, namespace: vms }
spec: { selector: { app: vm-app }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
`;
const CLUSTER = 'outbound|80||vm-app.vms.svc.cluster.local';

const group = (probe: string) => `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: vm-app, namespace: vms }
spec:
  metadata: { labels: { app: vm-app, version: v1 } }
  template: { serviceAccount: vm-app, ports: { http: 8080 } }
  probe: ${probe}
`;

/** The control plane, an ADS watcher of the VM service's endpoints, and the VM's application. */
async function setup(t: TestContext, probe: string, app: Parameters<typeof startUpstream>[1]) {
  const upstream = await startUpstream('vm-app', app);
  t.after(() => upstream.close());
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-wl-health-', config: `${SERVICE}---\n${group(probe)}`, controlPlane: { debounceMs: 10, debounceMaxMs: 100 } });
  const watcher = new AdsClient(`127.0.0.1:${mesh.cp.ports.xds}`, { id: 'sidecar~198.18.0.2~watcher-0.vms~vms.svc.cluster.local', metadata: { NAMESPACE: 'vms', INTERCEPTION_MODE: 'REDIRECT' } });
  t.after(() => watcher.close());
  watcher.onResponse = (r) => watcher.ack(r, [CLUSTER]);
  watcher.subscribe(ENDPOINT_TYPE, [CLUSTER]);
  let seen = 0;
  /** The first EDS response since the last one returned with `want` endpoints. */
  const endpoints = async (want: number) => {
    const r = await watcher.next(ENDPOINT_TYPE, (x) => eps(x).length === want, 20_000, seen);
    seen = watcher.responses.indexOf(r) + 1;
    return eps(r);
  };
  const vmArgs = async (extra: string[]) => ['--workload-port', '8080/http/HTTP', '--inbound-port', `8080=${await freePort()}`, '--app-port', `8080=${upstream.port}`, '--outbound-port', String(await freePort()), ...extra];
  return { mesh, endpoints, vmArgs, upstream };
}

function eps(r: AdsResponse): EnvoyJson[] {
  return ((r.resources[0]?.endpoints as EnvoyJson[] | undefined) ?? []).flatMap((g) => g.lb_endpoints as EnvoyJson[]);
}

/** The VM's sidecar: service account vm-app (the group's), ADS over TLS (port 15012's stand-in) with its token. */
async function startVm(t: TestContext, mesh: MeshControlPlane, args: string[]) {
  const tokenFile = await mesh.tokenFile('vms', 'vm-app');
  const workload = ['--namespace', 'vms', '--service-account', 'vm-app', '--workload-name', 'vm-app-0', '--labels', 'app=vm-app', '--xds-tls'];
  const proxy = startRigProxy(t, [...workload, ...args], { xdsPort: mesh.caPort, ca: { port: mesh.caPort, rootFile: mesh.rootFile, tokenFile } });
  await proxy.started();
  return proxy;
}

/** The VM's connection as the control plane sees it (its last health report). */
function vmConnection(mesh: MeshControlPlane) {
  return [...mesh.cp.discovery.connections.values()].find((c) => c.proxy.workloadGroup === 'vm-app');
}

test('exec probe: the workload joins EDS when `test -f` passes and leaves when it fails; traffic follows', async (t) => {
  const dir = tempDir(t, 'rig-wl-exec-');
  const ready = path.join(dir, 'ready');
  const probe = `{ periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 1, exec: { command: [test, -f, ${ready}] } }`;
  const { mesh, endpoints, vmArgs } = await setup(t, probe, undefined);
  // The agent is given the WorkloadGroup itself (its probe, and its name as the group).
  const groupFile = path.join(dir, 'vm-app.yaml');
  fs.writeFileSync(groupFile, group(probe));
  const vm = await startVm(t, mesh, await vmArgs(['--readiness-probe', groupFile]));
  const outbound = await freePort();
  await startSidecar(t, mesh, { namespace: 'vms', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  const call = () => request(outbound, { path: 'http://vm-app.vms.svc.cluster.local/hello', headers: { host: 'vm-app.vms.svc.cluster.local' } });

  // Registered, probed, unhealthy (no file): reported as such, not an endpoint. (Until its first
  // config the proxy reports itself not ready instead: the probe's report comes after.)
  const probeFailed = new RegExp(`command "test -f ${ready}" exited with status 1`);
  await until(() => `the VM's unhealthy report from its probe\n${vm.log()}`, () => vmConnection(mesh)?.health?.healthy === false && probeFailed.test(vmConnection(mesh)!.health!.message));
  assert.deepEqual(await endpoints(0), []);

  fs.writeFileSync(ready, '');
  const [ep] = await endpoints(1);
  assert.equal(ep.health_status, 'HEALTHY');
  const ok = await waitFor('a request through the client sidecar', async () => {
    const r = await call();
    return r.status === 200 ? r : undefined;
  });
  assert.equal((JSON.parse(ok.body) as { server: string }).server, 'vm-app');

  fs.rmSync(ready);
  assert.deepEqual(await endpoints(0), []);
  const refused = await waitFor('the client sidecar without the VM', async () => {
    const r = await call();
    return r.status === 503 ? r : undefined;
  });
  assert.match(refused.body, /no healthy upstream/);
  assert.match(vm.log(), /workload is unhealthy; reporting to the control plane/);
});

test('httpGet probe: the agent probes the application port and the endpoint follows its answers', async (t) => {
  let status = 503;
  const { mesh, endpoints, vmArgs } = await setup(t, '{ periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 1, httpGet: { port: 8080, path: /ready } }', (req, res) => {
    if (req.url !== '/ready') return false;
    res.writeHead(status).end();
    return true;
  });
  // The same probe given inline, with the group named on its own.
  const probe = JSON.stringify({ periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 1, httpGet: { port: 8080, path: '/ready' } });
  await startVm(t, mesh, await vmArgs(['--workload-group', 'vm-app', '--readiness-probe', probe]));
  await until("the VM's unhealthy report from its probe", () => vmConnection(mesh)?.health?.healthy === false && /status 503, not 200-399/.test(vmConnection(mesh)!.health!.message));
  assert.deepEqual(await endpoints(0), []);
  status = 200;
  assert.equal((await endpoints(1)).length, 1);
  status = 500;
  assert.deepEqual(await endpoints(0), []);
  status = 204;
  assert.equal((await endpoints(1)).length, 1);
});
