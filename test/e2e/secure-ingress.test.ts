// Istio's "Secure Gateways" task (SIMPLE TLS with credentialName) on Bookinfo through the real
// processes of `rig up`: the secret bookinfo-credential is a directory of files created with
// openssl as the task does (a CA for example.com, a certificate for bookinfo.example.com), the
// Gateway of examples/bookinfo/tasks/secure-ingress terminates TLS on its port 443 (remapped to a
// free port) and the client checks the gateway's certificate against that CA.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import { makeTaskCertificates } from '../helpers/istio-task-certs.ts';
import { DEMO_PATHS } from '../../src/local/demo.ts';
import { ingressGatewayPort, startMesh, type Mesh } from '../local/mesh-harness.ts';
import { eventually, httpsGet, request } from './bookinfo-mesh.ts';

const TASK = path.join(REPO_ROOT, 'examples/bookinfo/tasks/secure-ingress');
const HOST = 'bookinfo.example.com';

describe('Istio task: secure gateway (SIMPLE TLS, credentialName)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-secure-ingress-'));
  let mesh: Mesh;
  let ca = '';
  let port = 0;

  before(async () => {
    ca = makeTaskCertificates(dir, path.join(dir, 'credentials', 'bookinfo-credential'), HOST, 'bookinfo organization');
    mesh = await startMesh('up', ['-f', ...DEMO_PATHS, path.join(TASK, 'gateway-https.yaml'), '--credentials-dir', path.join(dir, 'credentials')], { gatewayPorts: [8080, 443] });
    port = await ingressGatewayPort(mesh, 443);
  });
  after(async () => {
    await mesh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the product page over TLS with the credential’s certificate', async () => {
    const res = await eventually('the product page over HTTPS', async () => {
      const r = await httpsGet(port, '/productpage', HOST, ca);
      return r.status === 200 ? r : undefined;
    }, 20_000);
    assert.equal(res.peerCN, HOST);
    assert.match(res.body, /Book Details/);
    // Only the VirtualService's paths are routed.
    assert.equal((await httpsGet(port, '/nothing-here', HOST, ca)).status, 404);
    // Plain text on the TLS port gets no HTTP answer.
    const plain = await request(port, '/productpage', { timeoutMs: 3000 }).catch(() => undefined);
    assert.ok(plain === undefined || plain.status >= 400, `plain HTTP on the TLS port answered ${plain?.status}`);
    // A client that does not trust example.com's CA refuses the certificate.
    await assert.rejects(httpsGet(port, '/productpage', HOST, ''), /self[- ]signed|unable to (get|verify)/i);
  });
});
