// Auto mTLS: the client sidecar verifies the server's SPIFFE identity against the service
// accounts that may serve the destination (issue 6 §3), end to end: the real control plane with
// its CA, a real `rig proxy` client sidecar, and a server endpoint (a WorkloadEntry with
// tlsMode istio, service account httpbin) that presents a mesh certificate. A certificate of the
// same mesh CA for another identity is refused (503); the right identity is served.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { CertificateAuthority } from '../../src/ca/index.ts';
import { createKeyAndCsr } from '../../src/proxy/identity/index.ts';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { parseYaml } from '../xds/fixtures.ts';
import { request } from '../proxy/harness.ts';

async function meshIdentity(ca: CertificateAuthority, spiffe: string): Promise<tls.SecureContext> {
  const { csrPem, privateKeyPem } = await createKeyAndCsr(spiffe);
  const chain = await ca.sign({ csrPem, identity: spiffe });
  return tls.createSecureContext({ cert: chain.slice(0, -1).join(''), key: privateKeyPem, ca: chain.at(-1) });
}

const viaClientSidecar = (port: number) => request(port, { path: 'http://httpbin.foo.svc.cluster.local:9080/' });

test('auto mTLS: the client sidecar refuses a server whose SPIFFE identity may not serve the service', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-server-id-' });
  const { ca, store } = mesh;

  // The "server sidecar": requires a mesh client certificate and echoes the client's identity.
  const imposter = await meshIdentity(ca, 'spiffe://cluster.local/ns/foo/sa/imposter');
  const genuine = await meshIdentity(ca, 'spiffe://cluster.local/ns/foo/sa/httpbin');
  let presented = imposter;
  const server = tls.createServer({ secureContext: imposter, SNICallback: (_name, cb) => cb(null, presented), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] }, (s) => {
    const peer = s.getPeerCertificate().subjectaltname ?? '';
    s.once('data', () => s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${peer.length}\r\nconnection: close\r\n\r\n${peer}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  store.apply(
    parseYaml(`
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: httpbin-0, namespace: foo }
spec:
  address: 127.0.0.1
  ports: { http: ${(server.address() as AddressInfo).port} }
  labels: { app: httpbin, security.istio.io/tlsMode: istio }
  serviceAccount: httpbin
`),
  );

  const outbound = await freePort();
  await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(outbound)] });

  // The imposter is refused once the sidecar is configured (the connection fails its SAN check).
  const deadline = Date.now() + 20_000;
  let r = await viaClientSidecar(outbound).catch(() => undefined);
  while (!(r?.status === 503 && /connection failure/.test(r.body))) {
    assert.ok(Date.now() < deadline, `expected a refused upstream, got ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 100));
    r = await viaClientSidecar(outbound).catch(() => undefined);
  }
  assert.match(r.body, /transport failure reason: TLS_error:\|SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher:TLS_error_end$/);

  // The same endpoint with the identity the service runs as: served, over mTLS with the client's identity.
  presented = genuine;
  const ok = await viaClientSidecar(outbound);
  assert.deepEqual({ status: ok.status, body: ok.body }, { status: 200, body: 'URI:spiffe://cluster.local/ns/foo/sa/sleep' });
});
