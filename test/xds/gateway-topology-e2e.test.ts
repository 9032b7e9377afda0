// gatewayTopology through real processes: the control plane and `rig proxy --mode router` gateways
// whose own proxy config (PROXY_CONFIG, Istio's proxy.istio.io/config annotation) sets it. With
// numTrustedProxies 1 the client address behind one load balancer is the x-forwarded-for entry, so
// an AuthorizationPolicy's remoteIpBlocks sees it; without it the connection peer (127.0.0.1) is the
// client. A client's x-forwarded-client-cert is removed on plaintext by Istio's gateway default
// (SANITIZE_SET) and by FORWARD_ONLY (Envoy forwards only over mTLS), and kept by ALWAYS_FORWARD_ONLY.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { makeTaskCertificates } from '../helpers/istio-task-certs.ts';
import { startMeshControlPlane, type MeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { edgeToBackend, startEdgeGateway, type EdgeGateway } from '../helpers/edge-gateway.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream, type Upstream } from '../proxy/harness.ts';

const config = (backendPort: number) => `${edgeToBackend(backendPort)}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: lb-clients, namespace: istio-system }
spec:
  selector: { matchLabels: { topology: xff } }
  action: ALLOW
  rules: [{ from: [{ source: { remoteIpBlocks: [203.0.113.0/24] } }] }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw-mtls, namespace: istio-system }
spec:
  selector: { topology: mtls }
  servers: [{ port: { number: 8443, name: https, protocol: HTTPS }, hosts: ['*'], tls: { mode: MUTUAL, credentialName: shop-credential } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge-mtls, namespace: istio-system }
spec:
  hosts: ['*']
  gateways: [gw-mtls]
  http: [{ route: [{ destination: { host: backend.example.com, port: { number: 80 } } }] }]
`;

/** An ingress gateway serving the Gateway's port 8080 (or `serverPort`) with its PROXY_CONFIG (if any). */
const startGateway = (t: TestContext, mesh: MeshControlPlane, name: string, labels: string, proxyConfig?: string, serverPort = 8080) => startEdgeGateway(t, mesh, { name, labels, proxyConfig, serverPort });

/** Waits until the gateway answers `status` (its listener, routes and policies pushed) and returns that reply. */
async function ready(gw: EdgeGateway, status: number, headers: Record<string, string> = {}) {
  return waitFor(
    () => `the gateway answering ${status}\n${gw.proxy.log()}`,
    async () => {
      const r = await request(gw.port, { headers: { host: 'shop.example.com', ...headers } }).catch(() => undefined);
      return r?.status === status ? r : undefined;
    },
    30_000,
  );
}

function lastRequest(backend: Upstream) {
  const r = backend.requests.at(-1);
  assert.ok(r, 'the backend got a request');
  return r;
}

test('gatewayTopology from a gateway proxy config: numTrustedProxies and forwardClientCertDetails through real rig proxy processes', async (t) => {
  const backend = await startUpstream('backend');
  t.after(() => backend.close());
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-gw-topology-', config: config(backend.port) });
  const [trusted, direct, forwardOnly, always, sanitizeSet] = await Promise.all([
    startGateway(t, mesh, 'gw-trusted', 'istio=ingressgateway,topology=xff', '{"gatewayTopology": {"numTrustedProxies": 1}}'),
    startGateway(t, mesh, 'gw-direct', 'istio=ingressgateway,topology=xff'),
    startGateway(t, mesh, 'gw-forward-only', 'istio=ingressgateway', 'gatewayTopology:\n  forwardClientCertDetails: FORWARD_ONLY\n'),
    startGateway(t, mesh, 'gw-always', 'istio=ingressgateway', '{"gatewayTopology": {"forwardClientCertDetails": "ALWAYS_FORWARD_ONLY"}}'),
    startGateway(t, mesh, 'gw-default', 'istio=ingressgateway'),
  ]);

  // numTrustedProxies 1: the client is the last x-forwarded-for entry, inside the allowed block.
  const xff = { 'x-forwarded-for': '203.0.113.7' };
  await ready(trusted, 200, xff);
  const seen = lastRequest(backend).headers;
  // The gateway appends its peer (for a loopback peer Envoy's own address, as its LocalInfo).
  assert.match(String(seen['x-forwarded-for']), /^203\.0\.113\.7,[\d.:a-f]+$/);
  assert.equal(seen['x-envoy-external-address'], '203.0.113.7', 'the trusted client address');
  assert.equal((await request(trusted.port, { headers: { host: 'shop.example.com' } })).status, 403, 'without x-forwarded-for the client is the peer, 127.0.0.1');
  assert.equal((await request(trusted.port, { headers: { host: 'shop.example.com', 'x-forwarded-for': '198.51.100.1' } })).status, 403);
  // Two entries: with one trusted hop the client is the last one (the load balancer's view).
  assert.equal((await request(trusted.port, { headers: { host: 'shop.example.com', 'x-forwarded-for': '203.0.113.7, 198.51.100.1' } })).status, 403);
  assert.equal((await request(trusted.port, { headers: { host: 'shop.example.com', 'x-forwarded-for': '198.51.100.1, 203.0.113.8' } })).status, 200);

  // Without numTrustedProxies the forged x-forwarded-for is not the client: denied.
  const denied = await ready(direct, 403, xff);
  assert.match(denied.body, /RBAC: access denied/);

  // x-forwarded-client-cert from a plaintext client.
  const xfcc = { 'x-forwarded-client-cert': 'By=spiffe://evil/ns/x/sa/y;URI=spiffe://evil/ns/x/sa/z' };
  await ready(sanitizeSet, 200, xfcc);
  assert.equal(lastRequest(backend).headers['x-forwarded-client-cert'], undefined, 'SANITIZE_SET (Istio gateway default) removes it without a client certificate');
  await ready(forwardOnly, 200, xfcc);
  assert.equal(lastRequest(backend).headers['x-forwarded-client-cert'], undefined, 'FORWARD_ONLY forwards only on mTLS connections');
  await ready(always, 200, xfcc);
  assert.equal(lastRequest(backend).headers['x-forwarded-client-cert'], xfcc['x-forwarded-client-cert'], 'ALWAYS_FORWARD_ONLY forwards it as received');
});

test('a gateway whose proxy config has an invalid gatewayTopology is refused by the control plane, naming the field', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-gw-topology-bad-', config: config(9) });
  const gw = await startGateway(t, mesh, 'gw-bad', 'istio=ingressgateway', '{"gatewayTopology": {"forwardClientCertDetails": "SANITISE"}}');
  await waitFor(() => `the refusal in the gateway log\n${gw.proxy.log()}`, () => (/PROXY_CONFIG\.gatewayTopology\.forwardClientCertDetails: expected one of/.test(gw.proxy.log()) ? true : undefined), 30_000);
});

/** The gateway's MUTUAL credential (shop.example.com, the example.com root as ca.crt) and a client certificate with a DNS and a URI SAN; returns the client's TLS options. */
function mutualCertificates(dir: string, credentialsDir: string): https.RequestOptions {
  const credential = path.join(credentialsDir, 'shop-credential');
  const root = makeTaskCertificates(dir, credential, 'shop.example.com', 'shop');
  copyFileSync(path.join(dir, 'example.com.crt'), path.join(credential, 'ca.crt'));
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  openssl(['req', '-out', 'client.csr', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-subj', '/CN=client.example.com/O=client']);
  writeFileSync(path.join(dir, 'client.ext'), 'subjectAltName=DNS:client.example.com,URI:spiffe://example.com/client\n');
  openssl(['x509', '-req', '-sha256', '-days', '1', '-CA', 'example.com.crt', '-CAkey', 'example.com.key', '-set_serial', '1', '-in', 'client.csr', '-out', 'client.crt', '-extfile', 'client.ext']);
  return { ca: root, cert: readFileSync(path.join(dir, 'client.crt')), key: readFileSync(path.join(dir, 'client.key')), servername: 'shop.example.com' };
}

function mtlsRequest(port: number, tls: https.RequestOptions, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ ...tls, host: '127.0.0.1', port, path: '/', headers: { host: 'shop.example.com', ...headers }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test('XFCC on a MUTUAL gateway server: the SANITIZE_SET default replaces a client header with the client certificate (subject, URI, DNS, cert); FORWARD_ONLY keeps it', async (t) => {
  const backend = await startUpstream('backend');
  t.after(() => backend.close());
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-gw-topology-mtls-', config: config(backend.port) });
  const tls = mutualCertificates(tempDir(t, 'rig-gw-topology-certs-'), path.join(mesh.dir, 'credentials'));
  const [sanitizeSet, forwardOnly] = await Promise.all([
    startGateway(t, mesh, 'gw-mtls-default', 'topology=mtls', undefined, 8443),
    startGateway(t, mesh, 'gw-mtls-forward-only', 'topology=mtls', '{"gatewayTopology": {"forwardClientCertDetails": "FORWARD_ONLY"}}', 8443),
  ]);
  const forged = { 'x-forwarded-client-cert': 'By=spiffe://evil/ns/x/sa/y;URI=spiffe://evil/ns/x/sa/z' };
  const served = (gw: EdgeGateway) => waitFor(() => `the MUTUAL gateway serving\n${gw.proxy.log()}`, async () => ((await mtlsRequest(gw.port, tls, forged).catch(() => 0)) === 200 ? true : undefined), 30_000);

  await served(sanitizeSet);
  const set = String(lastRequest(backend).headers['x-forwarded-client-cert']);
  assert.doesNotMatch(set, /evil/, 'the client-supplied element is dropped');
  assert.match(set, /^Hash=[0-9a-f]{64};/);
  assert.match(set, /;Subject="O=client,CN=client\.example\.com"/);
  assert.match(set, /;URI=spiffe:\/\/example\.com\/client;/);
  assert.match(set, /;DNS=client\.example\.com;/);
  assert.match(set, /;Cert="-----BEGIN%20CERTIFICATE-----/);

  await served(forwardOnly);
  assert.equal(lastRequest(backend).headers['x-forwarded-client-cert'], forged['x-forwarded-client-cert'], 'FORWARD_ONLY forwards it as received over mTLS');
});
