// Istio's "Egress Gateways" task for HTTPS traffic through the real processes of `rig up`: the
// app opens TLS to edition.cnn.com:443 through its sidecar (HTTPS_PROXY → CONNECT), the sidecar
// routes it by SNI to the egress gateway, which passes it through to the host. A local HTTPS
// server with a certificate for edition.cnn.com stands in for it; the client checks that
// certificate end to end, and the egress gateway's stats show the connections.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import type { Mesh } from '../local/mesh-harness.ts';
import { clusterCounter, eventually, startEgressGatewayTask } from './bookinfo-mesh.ts';
import { listenLocal } from '../helpers/listen.ts';

const TASK = path.join(REPO_ROOT, 'examples/bookinfo/tasks/egress-gateway');
const HOST = 'edition.cnn.com';

function callThroughSidecar(outboundPort: number, ca: string): Promise<{ status: number; body: string }> {
  const agent = new https.Agent({ proxyEnv: { HTTPS_PROXY: `http://127.0.0.1:${outboundPort}` }, ca });
  return new Promise((resolve, reject) => {
    https
      .get(`https://${HOST}/politics`, { agent, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject)
      .on('timeout', function (this: { destroy(e: Error): void }) {
        this.destroy(new Error('timeout'));
      });
  });
}

describe('Istio task: egress gateway for HTTPS traffic (PASSTHROUGH)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-egress-https-'));
  let server: https.Server;
  let mesh: Mesh;
  let ca = '';

  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${HOST}`, '-addext', `subjectAltName=DNS:${HOST}`, '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    ca = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: ca }, (_req, res) => res.end('cnn stand-in over TLS'));
    const port = await listenLocal(server);
    const se = readFileSync(path.join(TASK, 'service-entry-local-standin-https.yaml'), 'utf8').replace('tls: 18443', `tls: ${port}`);
    mesh = await startEgressGatewayTask(path.join(TASK, 'egress-gateway-cnn-https.yaml'), 443, se);
  });
  after(async () => {
    await mesh?.stop();
    server?.close();
    server?.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });

  const gatewayConnections = () => clusterCounter(mesh, 'istio-egressgateway', 'upstream_cx_total', 'outbound|443||edition.cnn.com');

  it('TLS to edition.cnn.com passes through the egress gateway undecrypted', async () => {
    const outbound = mesh.process('productpage-v1-0')!.ports.outbound!;
    const res = await eventually('edition.cnn.com answered through the egress gateway', async () => {
      const r = await callThroughSidecar(outbound, ca);
      return r.status === 200 && (await gatewayConnections()) > 0 ? r : undefined;
    });
    assert.equal(res.body, 'cnn stand-in over TLS');
    const before_ = await gatewayConnections();
    assert.equal((await callThroughSidecar(outbound, ca)).status, 200);
    assert.equal((await gatewayConnections()) - before_, 1, 'the connection passed through the egress gateway');
  });
});
