// A multi-network mesh on one machine, as Istio's multi-network install: pods labelled
// topology.istio.io/network, network2's east-west gateway (a Service labelled with the network, its
// external IP the gateway pod, a Gateway server in AUTO_PASSTHROUGH on 15443). The workloads of
// network2 drop every packet from the network1 client, so the client's call can only arrive through
// the gateway: split-horizon EDS gives the client the gateway instead of the endpoint, the client's
// mTLS (SNI outbound_.80_._.web...) passes through the gateway's SNI-DNAT cluster to the web pod's
// sidecar. An endpoint without a sidecar (plaintext) in network2 is dropped from the client's EDS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { rootSkipReason } from './helpers.ts';
import { FIXTURES, startMesh } from './mesh.ts';
import { waitFor } from '../helpers/wait.ts';

const WEB_VIP = '10.96.0.80';
const PLAIN_VIP = '10.96.0.81';
const SERVICES = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { clusterIP: ${WEB_VIP}, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: plain, namespace: default }
spec: { clusterIP: ${PLAIN_VIP}, selector: { app: plain }, ports: [{ name: http, port: 80, targetPort: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: cross-network-gateway, namespace: default }
spec:
  selector: { istio: eastwestgateway }
  servers:
  - port: { number: 15443, name: tls, protocol: TLS }
    tls: { mode: AUTO_PASSTHROUGH }
    hosts: ["*.local"]
`;

const stat = (m: Map<string, string>, name: string) => Number(m.get(name) ?? 0);

test('a client in network1 reaches a service in network2 only through network2\'s east-west gateway, with mTLS; a plaintext endpoint there is dropped', { skip: rootSkipReason() }, async (t) => {
  const mesh = await startMesh(t, 'mnet', { 'services.yaml': SERVICES });
  const web = await mesh.createPod('web');
  const plain = await mesh.createPod('plain', { iptables: false });
  const eastwest = await mesh.createPod('eastwest', { iptables: false });
  const client = await mesh.createPod('client');
  // network2's gateway: a Service labelled with the network, reached at its external IP (the gateway pod).
  writeFileSync(path.join(mesh.configDir, 'network2.yaml'), `apiVersion: v1
kind: Service
metadata: { name: eastwest, namespace: default, labels: { topology.istio.io/network: network2 } }
spec: { selector: { istio: eastwestgateway }, ports: [{ name: tls, port: 15443 }], externalIPs: [${eastwest.address}] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: plain, namespace: default, labels: { app: plain } }
spec: { address: ${plain.address}, network: network2 }
`);
  // network2 cannot be reached from network1 directly.
  for (const pod of [web, plain]) {
    const r = await mesh.exec(pod, 'iptables', ['-I', 'INPUT', '-s', client.address, '-j', 'DROP']);
    assert.equal(r.code, 0, r.stderr);
  }
  await mesh.startApp(web, [path.join(FIXTURES, 'echo-app.ts'), '9080']);
  await mesh.startApp(plain, [path.join(FIXTURES, 'echo-app.ts'), '9080']);
  await mesh.startSidecar(web, { labels: 'app=web,topology.istio.io/network=network2', ports: ['9080/http/HTTP'] });
  await mesh.startSidecar(eastwest, { labels: 'istio=eastwestgateway,topology.istio.io/network=network2', serviceAccount: 'eastwest', router: true });
  await mesh.startSidecar(client, { labels: 'app=client,topology.istio.io/network=network1' });

  const seen = await waitFor(() => `curl http://${WEB_VIP}/hello in network1\n${mesh.log('client')}\n${mesh.log('eastwest')}\n${mesh.log('web')}`, async () => {
    const r = await mesh.exec(client, 'curl', ['-sS', '-m', '3', `http://${WEB_VIP}/hello`]);
    if (r.code !== 0 || !r.stdout.startsWith('{')) throw new Error(`curl: ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout) as { remote: string; headers: Record<string, string> };
  }, { timeoutMs: 30_000, intervalMs: 300 });
  // Served by web's sidecar (the app sees it on loopback), which got the client's identity over mTLS.
  assert.match(seen.headers['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client/);

  // The client was given the gateway, not the endpoint; the gateway forwarded on the SNI-DNAT cluster.
  const clusters = (await mesh.exec(client, 'curl', ['-sS', '-m', '5', 'http://127.0.0.1:15000/clusters'])).stdout;
  const webHosts = clusters.split('\n').filter((l) => l.startsWith('outbound|80||web.default.svc.cluster.local::') && l.includes('::cx_total::'));
  assert.deepEqual(webHosts.map((l) => l.split('::')[1]), [`${eastwest.address}:15443`], clusters);
  const gw = await mesh.stats(eastwest);
  assert.ok(stat(gw, 'cluster.outbound_.80_._.web.default.svc.cluster.local.upstream_cx_total') >= 1, [...gw].filter(([k]) => k.includes('outbound_')).join('\n'));

  // plain has no sidecar: not reachable with Istio mTLS, so not through the gateway either: dropped.
  assert.ok(!clusters.split('\n').some((l) => l.startsWith('outbound|80||plain.default.svc.cluster.local::') && l.includes('::cx_total::')), clusters);
  const r = await mesh.exec(client, 'curl', ['-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${PLAIN_VIP}/hello`]);
  assert.equal(r.stdout, '503');
  // The control plane says why, beside the networks it knows.
  const dropKey = `network1|outbound|80||plain.default.svc.cluster.local|${plain.address}:9080`;
  const nz = await waitFor('/debug/networkz listing the dropped endpoint', async () => {
    const v = (await mesh.debug('/debug/networkz')) as { gateways: { network: string; address: string; port: number }[]; dropped: Record<string, string> };
    return v.dropped[dropKey] ? v : undefined;
  });
  assert.deepEqual(nz.gateways.map((g) => `${g.network} ${g.address}:${g.port}`), [`network2 ${eastwest.address}:15443`]);
  assert.match(nz.dropped[dropKey]!, /would not be ISTIO_MUTUAL/);
});
