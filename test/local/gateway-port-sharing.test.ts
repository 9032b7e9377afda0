// An ingress and an egress gateway whose Gateways declare the same server port (Istio's egress
// tasks use 80, as its ingress tasks do): on one host the egress gateway cannot bind it too, so
// `rig up` gives it a free port and says so, and both gateways come up ready instead of the second
// retrying a port in use forever.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMesh } from './mesh-harness.ts';

const gateway = (name: string, istio: string, port: number) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ${name} }
spec:
  selector: { istio: ${istio} }
  servers:
  - port: { number: ${port}, name: http, protocol: HTTP }
    hosts: ["*"]
`;

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

test('rig up: the egress gateway gets a free host port when the ingress gateway holds its Gateway port', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-gw-ports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  writeFileSync(path.join(dir, 'gateways.yaml'), `${gateway('ingress', 'ingressgateway', port)}---\n${gateway('istio-egressgateway', 'egressgateway', port)}`);
  const mesh = await startMesh('up', ['-f', dir], { gatewayPorts: [] });
  t.after(() => mesh.stop());

  const s = await mesh.waitFor((st) => !!st.readyAt && st.processes.some((p) => p.name === 'istio-egressgateway'), 'both gateways ready', 60_000);
  const ingress = s.processes.find((p) => p.name === 'istio-ingressgateway')!;
  const egress = s.processes.find((p) => p.name === 'istio-egressgateway')!;
  assert.equal(ingress.ports.gateway?.[port], port, 'the ingress gateway keeps its declared port');
  const moved = egress.ports.gateway?.[port];
  assert.ok(moved && moved !== port, `the egress gateway's port ${port} is bound elsewhere: ${JSON.stringify(egress.ports)}`);
  assert.equal(await accepts(moved), true, 'the egress gateway listens on its host port');
  assert.match(mesh.output(), new RegExp(`istio-egressgateway: Gateway server port ${port} is bound on 127\\.0\\.0\\.1:${moved} \\(istio-ingressgateway has ${port}\\)`));
});

test('rig up: two Gateway API Gateways on port 80 with --gateway-port 80=H: the first takes H, the second a free port', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-gw-ports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const hostPort = await freePort();
  const gatewayApi = (name: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: ${name} }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 80, protocol: HTTP }]
`;
  writeFileSync(path.join(dir, 'gateways.yaml'), `${gatewayApi('a')}---\n${gatewayApi('b')}`);
  const mesh = await startMesh('up', ['-f', dir, '--no-ingress', '--gateway-port', `80=${hostPort}`], { gatewayPorts: [] });
  t.after(() => mesh.stop());

  const s = await mesh.waitFor((st) => !!st.readyAt && st.processes.length === 2, 'both gateways ready', 60_000);
  const ports = s.processes.map((p) => p.ports.gateway?.['80']);
  assert.ok(ports.includes(hostPort), `one gateway has ${hostPort}: ${JSON.stringify(ports)}`);
  const moved = ports.find((p) => p !== hostPort)!;
  assert.ok(moved, `the other is bound elsewhere: ${JSON.stringify(ports)}`);
  assert.equal(await accepts(moved), true);
  assert.match(mesh.output(), new RegExp(`[ab]-istio: Gateway server port 80 is bound on 127\\.0\\.0\\.1:${moved} \\([ab]-istio has ${hostPort}, the host port --gateway-port gives 80\\)`));
});
