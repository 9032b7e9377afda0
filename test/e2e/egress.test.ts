// Istio's egress tasks through the real processes of `rig up`: with the mesh's
// outboundTrafficPolicy REGISTRY_ONLY an unknown external host is blocked, and a ServiceEntry
// opens it. A local HTTPS server (certificate from openssl) stands in for the external host;
// a workload's sidecar is reached as the app reaches it (HTTPS_PROXY → CONNECT).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEMO_PATHS } from '../../src/local/demo.ts';
import { startMesh, type Mesh } from '../local/mesh-harness.ts';
import { eventually } from './bookinfo-mesh.ts';

const HOST = 'external.example.com';

function callThroughSidecar(outboundPort: number, serverPort: number, ca: string): Promise<number> {
  const agent = new https.Agent({ proxyEnv: { HTTPS_PROXY: `http://127.0.0.1:${outboundPort}` }, ca });
  return new Promise((resolve, reject) => {
    https
      .get(`https://${HOST}:${serverPort}/headers`, { agent, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject)
      .on('timeout', function (this: { destroy(e: Error): void }) {
        this.destroy(new Error('timeout'));
      });
  });
}

describe('egress with REGISTRY_ONLY and a ServiceEntry', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-egress-'));
  let server: https.Server;
  let serverPort = 0;
  let ca = '';
  let mesh: Mesh;

  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${HOST}`, '-addext', `subjectAltName=DNS:${HOST}`, '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    ca = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: ca }, (_req, res) => res.end('external'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverPort = (server.address() as AddressInfo).port;
    writeFileSync(path.join(dir, 'mesh.yaml'), 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n');
    mesh = await startMesh('up', ['-f', ...DEMO_PATHS, '--mesh-config', path.join(dir, 'mesh.yaml')]);
    await mesh.waitFor((s) => !!s.readyAt, 'every process ready', 60_000);
  });
  after(async () => {
    await mesh?.stop();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('blocks an unknown external host, and lets it through once a ServiceEntry declares it', async () => {
    const outbound = mesh.process('productpage-v1-0')!.ports.outbound!;
    await assert.rejects(callThroughSidecar(outbound, serverPort, ca));
    const applied = await mesh.rig(
      ['apply', '-f', '-'],
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-example
spec:
  hosts:
  - ${HOST}
  ports:
  - number: ${serverPort}
    name: tls
    protocol: TLS
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints:
  - address: 127.0.0.1
`,
    );
    assert.equal(applied.code, 0, applied.stderr);
    const status = await eventually('the external host reachable', () => callThroughSidecar(outbound, serverPort, ca).catch(() => undefined));
    assert.equal(status, 200);
  });
});
