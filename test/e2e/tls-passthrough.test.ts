// Istio's "Ingress Gateway without TLS Termination" task through the real processes of `rig up`:
// my-nginx (a local HTTPS server with its own certificate for nginx.example.com) behind its
// sidecar, and the ingress gateway routing TLS by SNI to it without terminating it: the client
// sees my-nginx's certificate, signed by the task's example.com CA.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import { makeTaskCertificates } from '../helpers/istio-task-certs.ts';
import { ingressGatewayPort, startMesh, type Mesh } from '../local/mesh-harness.ts';
import { eventually, httpsGet } from './bookinfo-mesh.ts';

const TASK = path.join(REPO_ROOT, 'examples/bookinfo/tasks/tls-passthrough');
const HOST = 'nginx.example.com';

describe('Istio task: ingress gateway without TLS termination (PASSTHROUGH)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-passthrough-'));
  let mesh: Mesh;
  let ca = '';
  let port = 0;

  before(async () => {
    const certs = path.join(dir, 'certs');
    ca = makeTaskCertificates(dir, certs, HOST, 'some organization');
    // The task's workload, run from its directory with this test's certificates.
    const workload = readFileSync(path.join(TASK, 'my-nginx.yaml'), 'utf8').replace('cwd: .', `cwd: ${TASK}`).replace('TLS_CERT_DIR: certs', `TLS_CERT_DIR: ${certs}`);
    writeFileSync(path.join(dir, 'my-nginx.yaml'), workload);
    mesh = await startMesh('up', ['-f', path.join(dir, 'my-nginx.yaml'), path.join(TASK, 'gateway-passthrough.yaml')], { gatewayPorts: [443] });
    port = await ingressGatewayPort(mesh, 443);
  });
  after(async () => {
    await mesh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the client reaches my-nginx over TLS end to end and sees its certificate', async () => {
    const res = await eventually('my-nginx through the gateway', async () => {
      const r = await httpsGet(port, '/', HOST, ca);
      return r.status === 200 ? r : undefined;
    }, 20_000);
    assert.equal(res.peerCN, HOST);
    assert.match(res.body, /Welcome to nginx!/);
    // Another SNI matches no route: the gateway closes the connection.
    await assert.rejects(httpsGet(port, '/', 'other.example.com', ca));

  });
});
