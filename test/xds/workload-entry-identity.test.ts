// Who may control a health-checked WorkloadEntry, as istiod decides it (authorize, then the
// WorkloadEntry controller's ensureProxyCanControlEntry): a proxy's ADS stream over TLS proves an
// identity with its bootstrap token; only a proven identity of the entry's namespace and service
// account may stand for it (WORKLOAD_ENTRY) and report its health. Any other proxy is refused at
// connection, so its reports never reach the entry; a plaintext stream proves nothing; a proxy
// claiming another identity than the one it proved is refused too. Real ADS over TLS, real tokens.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ENDPOINT_TYPE, HEALTH_INFO_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient, type AdsResponse } from '../../src/xds/ads-client.ts';
import { startMeshControlPlane, type MeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { until } from '../helpers/wait.ts';
import { parseYaml } from './fixtures.ts';

const CLUSTER = 'outbound|80||vm-app.vms.svc.cluster.local';
const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: vm-app, namespace: vms }
spec: { selector: { app: vm-app }, ports: [{ name: http, port: 80, targetPort: http }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-1, namespace: vms, annotations: { proxy.istio.io/health-checks-enabled: "true" } }
spec: { address: 10.30.0.5, labels: { app: vm-app }, ports: { http: 8080 }, serviceAccount: vm-app }
`;

/** A proxy node standing for vm-1, claiming namespace `ns` and service account `sa`. */
const vmNode = (ns: string, sa: string): EnvoyJson => ({ id: `sidecar~10.30.0.5~vm-1.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns, SERVICE_ACCOUNT: sa, INSTANCE_IPS: '10.30.0.5', INTERCEPTION_MODE: 'REDIRECT', WORKLOAD_ENTRY: 'vm-1' } });

async function setup(t: TestContext) {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-wle-id-', config: CONFIG, controlPlane: { debounceMs: 10, debounceMaxMs: 100, workloadGraceMs: 100 } });
  const root = fs.readFileSync(mesh.rootFile);
  /** An ADS client over TLS (the CA's port serves ADS too) with a token of `tokenFor`, or plaintext without one. */
  const client = async (node: EnvoyJson, tokenFor?: { ns: string; sa: string }) => {
    const metadata = new grpc.Metadata();
    if (tokenFor) metadata.set('authorization', `Bearer ${fs.readFileSync(await mesh.tokenFile(tokenFor.ns, tokenFor.sa, `${tokenFor.ns}-${tokenFor.sa}.token`), 'utf8')}`);
    const c = tokenFor
      ? new AdsClient(`127.0.0.1:${mesh.caPort}`, node, { credentials: grpc.credentials.createSsl(root), channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc', 'grpc.default_authority': 'istiod.istio-system.svc' }, metadata })
      : new AdsClient(`127.0.0.1:${mesh.cp.ports.xds}`, node);
    t.after(() => c.close());
    return c;
  };
  const watcher = await client({ id: 'sidecar~198.18.0.2~watcher-0.vms~vms.svc.cluster.local', metadata: { NAMESPACE: 'vms', INTERCEPTION_MODE: 'REDIRECT' } });
  watcher.onResponse = (r) => watcher.ack(r, [CLUSTER]);
  watcher.subscribe(ENDPOINT_TYPE, [CLUSTER]);
  let seen = 0;
  const endpoints = async (want: number) => {
    const r = await watcher.next(ENDPOINT_TYPE, (x) => count(x) === want, 5000, seen);
    seen = watcher.responses.indexOf(r) + 1;
  };
  return { mesh, client, endpoints };
}

function count(r: AdsResponse): number {
  return ((r.resources[0]?.endpoints as EnvoyJson[] | undefined) ?? []).reduce((n, g) => n + (g.lb_endpoints as unknown[]).length, 0);
}

/** The entry's health in the control plane's current push context. */
function entryHealth(mesh: MeshControlPlane): boolean | undefined {
  return mesh.cp.discovery.push.endpointsOf('vm-app.vms.svc.cluster.local', 80).find((e) => e.address === '10.30.0.5')?.healthy;
}

test('only the proxy that proved the entry\'s service account controls its health; others are refused and change nothing', async (t) => {
  const { mesh, client, endpoints } = await setup(t);
  await endpoints(0);
  const owner = await client(vmNode('vms', 'vm-app'), { ns: 'vms', sa: 'vm-app' });
  owner.send({ type_url: HEALTH_INFO_TYPE });
  await endpoints(1);
  assert.equal([...mesh.cp.discovery.connections.values()].find((c) => c.proxy.workloadEntry === 'vm-1')?.identity?.serviceAccount, 'vm-app');

  // Another service account of the same namespace, honest about it: refused, its report lost.
  const intruder = await client(vmNode('vms', 'other'), { ns: 'vms', sa: 'other' });
  intruder.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'forged' } });
  const refused = await intruder.closed(5000);
  assert.equal(refused.code, grpc.status.PERMISSION_DENIED);
  assert.match(refused.details, /WorkloadEntry vms\/vm-1: service account mismatch: the proxy proved other, the entry runs as vm-app/);
  // A proxy claiming vm-app while its token proves another account: refused by authorization.
  const liar = await client(vmNode('vms', 'vm-app'), { ns: 'vms', sa: 'other' });
  liar.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'forged' } });
  const denied = await liar.closed(5000);
  assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
  assert.match(denied.details, /authorization failed: no proven identity \(spiffe:\/\/cluster\.local\/ns\/vms\/sa\/other\) matches the node's namespace vms and service account vm-app/);
  // A plaintext stream proves nothing.
  const plain = await client(vmNode('vms', 'vm-app'));
  plain.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'forged' } });
  const anonymous = await plain.closed(5000);
  assert.equal(anonymous.code, grpc.status.PERMISSION_DENIED);
  assert.match(anonymous.details, /WorkloadEntry vms\/vm-1 can only be controlled by a proxy with a verified identity/);
  // None of them touched the entry: still healthy, and the owner still controls it.
  assert.equal(entryHealth(mesh), true);
  owner.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'status 503' } });
  await endpoints(0);
  await until('the owner\'s report applied', () => entryHealth(mesh) === false);
});

test('a proxy of another namespace cannot mark the entry healthy, and a TLS stream without a credential is refused', async (t) => {
  const { mesh, client } = await setup(t);
  // Honest about its namespace, but then its WORKLOAD_ENTRY names an entry of that namespace.
  const elsewhere = await client(vmNode('default', 'vm-app'), { ns: 'default', sa: 'vm-app' });
  elsewhere.send({ type_url: HEALTH_INFO_TYPE });
  const missing = await elsewhere.closed(5000);
  assert.equal(missing.code, grpc.status.FAILED_PRECONDITION);
  assert.match(missing.details, /WorkloadEntry default\/vm-1, which does not exist/);
  // Claiming the entry's namespace with another namespace's token.
  const claim = await client(vmNode('vms', 'vm-app'), { ns: 'default', sa: 'vm-app' });
  claim.send({ type_url: HEALTH_INFO_TYPE });
  assert.equal((await claim.closed(5000)).code, grpc.status.PERMISSION_DENIED);
  // Over TLS with no token at all: not authenticated (Istio refuses the stream).
  const bare = new AdsClient(`127.0.0.1:${mesh.caPort}`, vmNode('vms', 'vm-app'), { credentials: grpc.credentials.createSsl(fs.readFileSync(mesh.rootFile)), channelOptions: { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' } });
  t.after(() => bare.close());
  bare.send({ type_url: HEALTH_INFO_TYPE });
  const unauthenticated = await bare.closed(5000);
  assert.equal(unauthenticated.code, grpc.status.UNAUTHENTICATED);
  assert.match(unauthenticated.details, /authentication failure: no credential/);
  assert.equal(entryHealth(mesh), false, 'still unhealthy: no report was accepted');
});

test('a proxy that connected before the entry was health-checked does not control it, nor clear its health when it leaves', async (t) => {
  const { mesh, client, endpoints } = await setup(t);
  const unannotated = CONFIG.replace(', annotations: { proxy.istio.io/health-checks-enabled: "true" }', '');
  mesh.store.apply(parseYaml(unannotated));
  await endpoints(1);
  // Any proxy of the namespace may stand for an entry that is not health-checked (Istio does not associate it).
  const bystander = await client({ ...vmNode('vms', 'other'), id: 'sidecar~10.30.0.6~bystander-0.vms~vms.svc.cluster.local' }, { ns: 'vms', sa: 'other' });
  bystander.subscribe(ENDPOINT_TYPE, [CLUSTER]);
  await bystander.next(ENDPOINT_TYPE);
  mesh.store.apply(parseYaml(CONFIG));
  await endpoints(0);
  const owner = await client(vmNode('vms', 'vm-app'), { ns: 'vms', sa: 'vm-app' });
  owner.send({ type_url: HEALTH_INFO_TYPE });
  await endpoints(1);
  bystander.send({ type_url: HEALTH_INFO_TYPE, error_detail: { code: 13, message: 'forged' } });
  await until('the bystander\'s report ignored', () => [...mesh.cp.discovery.connections.values()].some((c) => c.proxy.serviceAccount === 'other' && c.healthIgnored));
  bystander.close();
  await until('the bystander gone', () => ![...mesh.cp.discovery.connections.values()].some((c) => c.proxy.serviceAccount === 'other'));
  // Well past its grace period (100 ms): the owner's report stands.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(entryHealth(mesh), true);
});

const GROUP = `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: vm-app, namespace: vms }
spec:
  metadata: { labels: { app: vm-app } }
  template: { serviceAccount: vm-app, ports: { http: 8080 } }
`;

test('auto-registration: only a proxy that proved the group template\'s service account registers, also when the group comes later', async (t) => {
  const { mesh, client, endpoints } = await setup(t);
  const groupNode = (ip: string, sa: string): EnvoyJson => ({ id: `sidecar~${ip}~vm-${sa}.vms~vms.svc.cluster.local`, metadata: { NAMESPACE: 'vms', SERVICE_ACCOUNT: sa, INSTANCE_IPS: ip, INTERCEPTION_MODE: 'REDIRECT', AUTO_REGISTER_GROUP: 'vm-app' } });
  // Before its group exists a proxy is admitted on its own identity...
  const early = await client(groupNode('10.30.0.7', 'other'), { ns: 'vms', sa: 'other' });
  early.subscribe(ENDPOINT_TYPE, [CLUSTER]);
  await early.next(ENDPOINT_TYPE);
  // ...but the group, once created, runs as vm-app: it does not take that proxy.
  mesh.store.apply(parseYaml(GROUP));
  const owner = await client(groupNode('10.30.0.8', 'vm-app'), { ns: 'vms', sa: 'vm-app' });
  owner.subscribe(ENDPOINT_TYPE, [CLUSTER]);
  await endpoints(1);
  // (vm-1 is there too, unhealthy: no report.)
  assert.deepEqual(mesh.cp.discovery.push.endpointsOf('vm-app.vms.svc.cluster.local', 80).map((e) => `${e.address}/${e.healthy !== false}`).sort(), ['10.30.0.5/false', '10.30.0.8/true']);
  // With the group there, another service account is refused at connection.
  const late = await client(groupNode('10.30.0.9', 'other'), { ns: 'vms', sa: 'other' });
  late.subscribe(ENDPOINT_TYPE, [CLUSTER]);
  const refused = await late.closed(5000);
  assert.equal(refused.code, grpc.status.PERMISSION_DENIED);
  assert.match(refused.details, /the WorkloadEntry of WorkloadGroup vms\/vm-app: service account mismatch: the proxy proved other, the entry runs as vm-app/);
});
