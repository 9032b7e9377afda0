// Network gateways written with the Gateway API, through real proxies in network namespaces (the
// setup of multi-network.test.ts: network2's workloads drop every packet from the network1 client,
// so its call can only arrive through network2's east-west gateway). The gateway is declared as
// Istio's multicluster docs do: a Gateway of class istio labelled topology.istio.io/network with a
// TLS Passthrough listener on 15443 (its proxy AUTO_PASSTHROUGH, its spec.addresses network2's
// gateway), or, for a gateway this control plane does not program, a Gateway of class istio-remote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { rootSkipReason } from './helpers.ts';
import { FIXTURES, startMesh } from './mesh.ts';
import { waitFor } from '../helpers/wait.ts';

const WEB_VIP = '10.96.0.80';
const WEB = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { clusterIP: ${WEB_VIP}, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 9080 }] }
`;

/** A Gateway API Gateway for network2 at `address`: `cls` istio (programs the eastwest pod) or istio-remote (only its address). */
function networkGateway(cls: string, address: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: eastwest, namespace: default, labels: { topology.istio.io/network: network2 } }
spec:
  gatewayClassName: ${cls}
  addresses: [{ value: ${address} }]
  listeners:
  - { name: cross-network, hostname: "*.local", port: 15443, protocol: TLS, tls: { mode: Passthrough } }
`;
}

/** With istio-remote, the eastwest pod is programmed by an Istio Gateway, as network2's own control plane would. */
const ISTIO_EAST_WEST = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: cross-network-gateway, namespace: default }
spec:
  selector: { gateway.networking.k8s.io/gateway-name: eastwest }
  servers:
  - port: { number: 15443, name: tls, protocol: TLS }
    tls: { mode: AUTO_PASSTHROUGH }
    hosts: ["*.local"]
`;

for (const cls of ['istio', 'istio-remote']) {
  test(`a Gateway of class ${cls} labelled network2 is network2's gateway: the network1 client reaches web only through it, with mTLS`, { skip: rootSkipReason() }, async (t) => {
    const mesh = await startMesh(t, cls === 'istio' ? 'gwmn' : 'gwrm', { 'web.yaml': WEB });
    const web = await mesh.createPod('web');
    const eastwest = await mesh.createPod('eastwest', { iptables: false });
    const client = await mesh.createPod('client');
    writeFileSync(path.join(mesh.configDir, 'network2.yaml'), networkGateway(cls, eastwest.address) + (cls === 'istio' ? '' : `---\n${ISTIO_EAST_WEST}`));
    const r = await mesh.exec(web, 'iptables', ['-I', 'INPUT', '-s', client.address, '-j', 'DROP']);
    assert.equal(r.code, 0, r.stderr);
    await mesh.startApp(web, [path.join(FIXTURES, 'echo-app.ts'), '9080']);
    await mesh.startSidecar(web, { labels: 'app=web,topology.istio.io/network=network2', ports: ['9080/http/HTTP'] });
    await mesh.startSidecar(eastwest, { labels: 'gateway.networking.k8s.io/gateway-name=eastwest,topology.istio.io/network=network2', serviceAccount: 'eastwest-istio', router: true });
    await mesh.startSidecar(client, { labels: 'app=client,topology.istio.io/network=network1' });

    const seen = await waitFor(() => `curl http://${WEB_VIP}/hello in network1\n${mesh.log('client')}\n${mesh.log('eastwest')}\n${mesh.log('web')}`, async () => {
      const c = await mesh.exec(client, 'curl', ['-sS', '-m', '3', `http://${WEB_VIP}/hello`]);
      if (c.code !== 0 || !c.stdout.startsWith('{')) throw new Error(`curl: ${c.stdout}${c.stderr}`);
      return JSON.parse(c.stdout) as { headers: Record<string, string> };
    }, { timeoutMs: 30_000, intervalMs: 300 });
    assert.match(seen.headers['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client/);
    // The client was given the Gateway's address, not web's; the gateway forwarded on its SNI-DNAT cluster.
    const clusters = (await mesh.exec(client, 'curl', ['-sS', '-m', '5', 'http://127.0.0.1:15000/clusters'])).stdout;
    const webHosts = clusters.split('\n').filter((l) => l.startsWith('outbound|80||web.default.svc.cluster.local::') && l.includes('::cx_total::'));
    assert.deepEqual(webHosts.map((l) => l.split('::')[1]), [`${eastwest.address}:15443`], clusters);
    const gw = await mesh.stats(eastwest);
    assert.ok(Number(gw.get('cluster.outbound_.80_._.web.default.svc.cluster.local.upstream_cx_total') ?? 0) >= 1, [...gw].filter(([k]) => k.includes('outbound_')).join('\n'));
  });
}
