// Gateway API TLS through real processes (`rig controlplane` watching a config directory, a
// `rig proxy --mode router` for the Gateway, openssl-made certificates):
// - BackendTLSPolicy: the gateway originates TLS to an HTTPS backend with the policy's hostname as
//   SNI, verifying it against the ConfigMap's ca.crt; a ConfigMap of another CA, or a
//   subjectAltName the certificate does not carry, fails as Envoy fails it (503, UF, a
//   verification failure), and the policies' status says Accepted/ResolvedRefs as istiod's does.
// - Gateway spec.tls.frontend: AllowValidOnly refuses a client without a certificate and serves
//   one with a certificate of the ConfigMap's CA; the perPort AllowInsecureFallback port serves
//   both, and a certificate of another CA too.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { freePort } from '../../src/local/ports.ts';
import { serviceEntry, startGatewayApiGateway } from '../helpers/edge-gateway.ts';
import { makeTaskCertificates } from '../helpers/istio-task-certs.ts';
import { startControlPlaneProcess } from '../helpers/mesh-control-plane.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { request } from '../proxy/harness.ts';

const UNTRUSTED = 'TLS_error:|SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: unable to verify the first certificate:TLS_error_end';
const SAN_REFUSED = 'TLS_error:|SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher:TLS_error_end';

/** A Service `name` (port 443, https) whose endpoint is the HTTPS backend, as a ServiceEntry of its host. */
const service = (name: string, port: number) => serviceEntry(name, port, { port: 443, protocol: 'HTTPS' });

const configMap = (name: string, pem: string) => `apiVersion: v1
kind: ConfigMap
metadata: { name: ${name} }
data:
  ca.crt: |
${pem
  .trim()
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
---
`;

const policy = (name: string, ca: string, extra = '') => `apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: { name: ${name} }
spec:
  targetRefs: [{ group: "", kind: Service, name: ${name} }]
  validation:
    caCertificateRefs: [{ group: "", kind: ConfigMap, name: ${ca} }]
    hostname: backend.example.com${extra}
---
`;

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: shop }
spec:
  gatewayClassName: istio
  tls:
    frontend:
      default:
        validation: { caCertificateRefs: [{ group: "", kind: ConfigMap, name: client-ca }] }
      perPort:
      - port: 9443
        tls: { validation: { mode: AllowInsecureFallback, caCertificateRefs: [{ group: "", kind: ConfigMap, name: client-ca }] } }
  listeners:
  - { name: http, port: 8080, protocol: HTTP }
  - { name: https, port: 8443, protocol: HTTPS, tls: { mode: Terminate, certificateRefs: [{ name: shop-cert }] } }
  - { name: fallback, port: 9443, protocol: HTTPS, tls: { mode: Terminate, certificateRefs: [{ name: shop-cert }] } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop }
spec:
  parentRefs: [{ name: shop }]
  rules:
  - matches: [{ path: { type: PathPrefix, value: /wrong-ca } }]
    backendRefs: [{ name: wrong-ca, port: 443 }]
  - matches: [{ path: { type: PathPrefix, value: /wrong-san } }]
    backendRefs: [{ name: wrong-san, port: 443 }]
  - matches: [{ path: { type: PathPrefix, value: /no-ca } }]
    backendRefs: [{ name: no-ca, port: 443 }]
  - backendRefs: [{ name: good, port: 443 }]
`;

test('BackendTLSPolicy originates verified TLS from a Gateway; spec.tls.frontend validates client certificates', async (t) => {
  const dir = tempDir(t, 'rig-backend-tls-');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const state = path.join(dir, 'state');
  // example.com's root (Istio's task certificates) signs the gateway's, the backend's and the client's certificates.
  const rootPem = makeTaskCertificates(dir, path.join(state, 'credentials', 'shop-cert'), 'shop.example.com', 'shop');
  const signed = (name: string, cn: string, ext?: string) => {
    openssl('req', '-out', `${name}.csr`, '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-subj', `/CN=${cn}`);
    if (ext) fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl('x509', '-req', '-sha256', '-days', '1', '-CA', 'example.com.crt', '-CAkey', 'example.com.key', '-set_serial', String(Date.now() % 100000), '-in', `${name}.csr`, '-out', `${name}.crt`, ...(ext ? ['-extfile', `${name}.ext`] : []));
    return { cert: fs.readFileSync(path.join(dir, `${name}.crt`)), key: fs.readFileSync(path.join(dir, `${name}.key`)) };
  };
  const backendCert = signed('backend', 'backend.example.com', 'subjectAltName=DNS:backend.example.com\n');
  const client = signed('client', 'client.example.com');
  // Another root, and a client certificate it signs itself.
  openssl('req', '-x509', '-sha256', '-nodes', '-days', '1', '-newkey', 'rsa:2048', '-subj', '/O=other Inc./CN=other.example', '-keyout', 'other.key', '-out', 'other.crt');
  const otherPem = fs.readFileSync(path.join(dir, 'other.crt'), 'utf8');
  const stranger = { cert: fs.readFileSync(path.join(dir, 'other.crt')), key: fs.readFileSync(path.join(dir, 'other.key')) };

  // The HTTPS backend: tells which SNI it was asked for.
  const backend = https.createServer(backendCert, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ sni: (req.socket as TLSSocket).servername }));
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => backend.close(() => resolve())));
  const backendPort = (backend.address() as AddressInfo).port;

  // Istio's access log (mesh config accessLogFile), whose response flags say how a request failed.
  fs.writeFileSync(path.join(dir, 'mesh-config.yaml'), 'accessLogFile: /dev/stdout\n');
  const cp = await startControlPlaneProcess(
    t,
    dir,
    service('good', backendPort) +
      service('wrong-ca', backendPort) +
      service('wrong-san', backendPort) +
      service('no-ca', backendPort) +
      configMap('backend-ca', rootPem) +
      configMap('other-ca', otherPem) +
      configMap('client-ca', rootPem) +
      policy('good', 'backend-ca') +
      policy('wrong-ca', 'other-ca') +
      policy('wrong-san', 'backend-ca', '\n    subjectAltNames: [{ type: Hostname, hostname: api.example.com }]') +
      policy('no-ca', 'does-not-exist') +
      GATEWAY,
    ['--mesh-config', path.join(dir, 'mesh-config.yaml')],
  );

  const [port, tlsPort, fallbackPort] = [await freePort(), await freePort(), await freePort()];
  // Istio's proxyStatsMatcher: the clusters' TLS stats are not kept by default.
  const proxyConfig = JSON.stringify({ proxyStatsMatcher: { inclusionRegexps: ['cluster\\.outbound.*\\.ssl\\..*'] } });
  const gateway = await startGatewayApiGateway(t, cp.xds, 'shop', { 8080: port, 8443: tlsPort, 9443: fallbackPort }, { PROXY_CONFIG: proxyConfig });
  const { admin } = await gateway.started();

  // TLS originated to the backend, verified with the ConfigMap's CA, the policy's hostname as SNI.
  const good = await waitFor(
    () => `the gateway reaching the TLS backend\n${gateway.log()}\n${cp.log()}`,
    async () => {
      const r = await request(port, { path: '/', headers: { host: 'shop.example.com' } }).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    },
    60_000,
  );
  assert.deepEqual(good.json(), { sni: 'backend.example.com' });
  // A ConfigMap of another CA: the backend's certificate does not verify.
  const wrongCa = await request(port, { path: '/wrong-ca', headers: { host: 'shop.example.com' } });
  assert.equal(wrongCa.status, 503);
  assert.equal(wrongCa.body, `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${UNTRUSTED}`);
  // The right CA, but a subjectAltName the backend's certificate does not carry.
  const wrongSan = await request(port, { path: '/wrong-san', headers: { host: 'shop.example.com' } });
  assert.equal(wrongSan.status, 503);
  assert.equal(wrongSan.body, `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${SAN_REFUSED}`);
  // A CA ConfigMap that does not exist: istiod's invalid:// credential, whose secret never comes; the request fails, the others are served.
  assert.equal((await request(port, { path: '/no-ca', headers: { host: 'shop.example.com' } })).status, 503);
  const stats = (await request(admin, { path: '/stats?format=json' })).json<{ stats: { name: string; value: number }[] }>().stats;
  const stat = (name: string) => stats.find((s) => s.name === name)?.value;
  // Each: the attempt and Istio's two default retries (connect-failure).
  assert.equal(stat('cluster.outbound|443||wrong-ca.default.svc.cluster.local.ssl.fail_verify_error'), 3);
  assert.equal(stat('cluster.outbound|443||wrong-san.default.svc.cluster.local.ssl.fail_verify_san'), 3);
  assert.equal(stat('cluster.outbound|443||good.default.svc.cluster.local.ssl.handshake'), 1);
  // Istio's access log: 503 UF (the upstream connection failed) and URX (retries exhausted), with the TLS failure as the reason.
  await waitFor(() => `the access log lines\n${gateway.stdout()}`, () => (/GET \/no-ca /.test(gateway.stdout()) ? true : undefined));
  // The reasons in Envoy's words: its SSL socket's error (the validator's details), its not-ready socket's while SDS has no secret.
  const logged = gateway.stdout();
  assert.match(logged, /"GET \/no-ca HTTP\/1\.1" 503 [^"]*"TLS error: Secret is not supplied by SDS"/);
  assert.ok(logged.includes(`"GET /wrong-ca HTTP/1.1" 503 UF,URX upstream_reset_before_response_started{connection_failure} - "${UNTRUSTED}"`), logged);
  assert.ok(logged.includes(`"GET /wrong-san HTTP/1.1" 503 UF,URX upstream_reset_before_response_started{connection_failure} - "${SAN_REFUSED}"`), logged);

  // The policies' status, as istiod writes it: one ancestor per targetRef (the Service, for the mesh), then each Gateway routing there.
  const configz = (await request(cp.monitoring, { path: '/debug/configz' })).json<{ kind: string; metadata: { name: string }; status?: { ancestors: { ancestorRef: { name: string }; controllerName: string; conditions: { type: string; status: string; reason: string }[] }[] } }[]>();
  const ancestors = (name: string) =>
    configz.find((r) => r.kind === 'BackendTLSPolicy' && r.metadata.name === name)?.status?.ancestors.map((a) => [a.ancestorRef.name, a.controllerName, ...a.conditions.map((c) => `${c.type}=${c.status} ${c.reason}`)]);
  assert.deepEqual(ancestors('good'), [
    ['good', 'istio.io/mesh-controller', 'Accepted=True Accepted', 'ResolvedRefs=True ResolvedRefs'],
    ['shop', 'istio.io/gateway-controller', 'Accepted=True Accepted', 'ResolvedRefs=True ResolvedRefs'],
  ]);
  assert.deepEqual(ancestors('no-ca'), [
    ['no-ca', 'istio.io/mesh-controller', 'Accepted=False NoValidCACertificate', 'ResolvedRefs=False InvalidCACertificateRef'],
    ['shop', 'istio.io/gateway-controller', 'Accepted=False NoValidCACertificate', 'ResolvedRefs=False InvalidCACertificateRef'],
  ]);
  assert.match(cp.log(), /BackendTLSPolicy default\/no-ca.*ResolvedRefs=False \(InvalidCACertificateRef\): Certificate reference not found/);

  // Frontend validation: AllowValidOnly on 8443, AllowInsecureFallback on 9443.
  const call = (p: number, cert?: { cert: Buffer; key: Buffer }) =>
    new Promise<string>((resolve) => {
      const req = https.request({ host: '127.0.0.1', port: p, path: '/', servername: 'shop.example.com', ca: rootPem, headers: { host: 'shop.example.com' }, agent: false, ...cert }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
      req.end();
    });
  assert.equal(await waitFor(() => `the frontend-validated listener serving\n${gateway.log()}`, async () => ((await call(tlsPort, client)) === '200' ? '200' : undefined), 60_000), '200');
  assert.match(await call(tlsPort), /^error /, 'AllowValidOnly: no client certificate, refused');
  assert.match(await call(tlsPort, stranger), /^error /, 'AllowValidOnly: a certificate of another CA, refused');
  assert.equal(await waitFor(() => `the fallback listener serving\n${gateway.log()}`, async () => ((await call(fallbackPort)) === '200' ? '200' : undefined), 60_000), '200');
  assert.equal(await call(fallbackPort, client), '200');
  assert.equal(await call(fallbackPort, stranger), '200', 'AllowInsecureFallback: a certificate that does not verify is accepted too');
  const gw = configz.find((r) => r.kind === 'Gateway' && r.metadata.name === 'shop') as unknown as { status: { conditions: { type: string; status: string }[] } };
  assert.equal(gw.status.conditions.find((c) => c.type === 'InsecureFrontendValidationMode')?.status, 'True');
});
