// DestinationRule tls.caCrl as istiod applies it (pilot cluster_tls.go constructUpstreamTLS): with
// SIMPLE or MUTUAL verified from files or the system CAs, the CRL file goes into the upstream TLS
// context's (default) validation context as crl.filename; ISTIO_MUTUAL, credentialName and
// insecureSkipVerify leave it out (a warning says so). Then through the control plane and a real
// `rig proxy` gateway, with certificates and a CRL made by `openssl ca`: the backend whose
// certificate the CRL revokes answers 503 (UF,URX: istiod's default retries retry the connect
// failure), the other 200.
import assert from 'node:assert/strict';
import https from 'node:https';
import { test } from 'node:test';
import { loadDocuments } from '../../src/api/index.ts';
import { CLUSTER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { DEFAULT_MESH_CONFIG } from '../../src/model/mesh-config.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { makeCrlPki } from '../helpers/crl-pki.ts';
import { edgeGatewayYaml, startEdgeGateway } from '../helpers/edge-gateway.ts';
import { listenLocal } from '../helpers/listen.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { waitFor } from '../helpers/wait.ts';
import { request } from '../proxy/harness.ts';
import { assertEnvoyResource, buildPush, parseYaml, podSidecar } from './fixtures.ts';

const backend = (name: string, port: number, tls: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: istio-system }
spec:
  hosts: [${name}.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 443, name: https, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { https: ${port} } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: istio-system }
spec:
  host: ${name}.example.com
  trafficPolicy: { tls: ${tls} }
`;

function validationOf(c: EnvoyJson): EnvoyJson | undefined {
  const common = ((c.transport_socket as EnvoyJson).typed_config as EnvoyJson).common_tls_context as EnvoyJson;
  return (common.validation_context ?? (common.combined_validation_context as EnvoyJson | undefined)?.default_validation_context) as EnvoyJson | undefined;
}

test('tls.caCrl: the crl of the validation context with SIMPLE/MUTUAL from files or system CAs; left out, with a warning, where istiod ignores it', () => {
  const client = podSidecar('client-0', 'istio-system', { app: 'client' }, 'client', [], '198.18.0.82');
  const yaml = [
    backend('files', 1, '{ mode: SIMPLE, caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/ca.crl }'),
    backend('system', 1, '{ mode: SIMPLE, caCrl: /etc/certs/ca.crl }'),
    backend('credential', 1, '{ mode: SIMPLE, credentialName: backend-ca, caCrl: /etc/certs/ca.crl }'),
    backend('skip', 1, '{ mode: SIMPLE, insecureSkipVerify: true, caCrl: /etc/certs/ca.crl }'),
    backend('mesh', 1, '{ mode: ISTIO_MUTUAL, caCrl: /etc/certs/ca.crl }'),
  ].join('\n---');
  const push = buildPush(parseYaml(yaml), [client]);
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, client, undefined);
  const cluster = (name: string) => {
    const c = clusters.find((x) => x.name === `outbound|443||${name}.example.com`)!;
    assertEnvoyResource(CLUSTER_TYPE, c);
    return c;
  };
  assert.deepEqual(validationOf(cluster('files')), { trusted_ca: { filename: '/etc/certs/ca.pem' }, crl: { filename: '/etc/certs/ca.crl' } });
  assert.deepEqual(validationOf(cluster('system')), { crl: { filename: '/etc/certs/ca.crl' } });
  assert.equal(validationOf(cluster('credential'))?.crl, undefined);
  assert.equal(validationOf(cluster('skip')), undefined);
  assert.doesNotMatch(JSON.stringify(cluster('mesh')), /ca\.crl/);

  const warnings = loadDocuments(yaml, 'dr.yaml').diagnostics.filter((d) => d.severity === 'Warning').map((d) => d.path);
  assert.deepEqual(warnings, ['spec.trafficPolicy.tls.caCrl', 'spec.trafficPolicy.tls.caCrl', 'spec.trafficPolicy.tls.caCrl']);
});

async function httpsServer(t: { after(fn: () => unknown): void }, cert: string, key: string): Promise<number> {
  return listenLocal(https.createServer({ cert, key }, (_req, res) => res.end('secure hello')), t);
}

test('through the control plane and a rig gateway: the backend whose certificate tls.caCrl revokes answers 503 UF,URX, the other 200', async (t) => {
  const pki = makeCrlPki(t, 'backend.example.com');
  const goodPort = await httpsServer(t, pki.good.cert, pki.good.key);
  const revokedPort = await httpsServer(t, pki.revoked.cert, pki.revoked.key);
  const tls = `{ mode: SIMPLE, sni: backend.example.com, subjectAltNames: [backend.example.com], caCertificates: ${pki.caFile}, caCrl: ${pki.crlFile} }`;
  const config = `${backend('good', goodPort, tls)}\n---${backend('revoked', revokedPort, tls)}\n---${edgeGatewayYaml(
    `{ match: [{ uri: { prefix: /good } }], route: [{ destination: { host: good.example.com, port: { number: 443 } } }] }, { route: [{ destination: { host: revoked.example.com, port: { number: 443 } } }] }`,
  )}`;
  const mesh = await startMeshControlPlane(t, {
    dirPrefix: 'rig-ca-crl-',
    config,
    controlPlane: { mesh: { ...DEFAULT_MESH_CONFIG, accessLogFile: '/dev/stdout', accessLogFormat: 'CRL %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n' } },
  });
  const gw = await startEdgeGateway(t, mesh, { name: 'gw-ca-crl' });
  const good = await waitFor(() => `a 200 from the good backend through the gateway\n${gw.proxy.log()}`, async () => {
    const r = await request(gw.port, { path: '/good', headers: { host: 'shop.example.com' } });
    return r.status === 200 ? r : undefined;
  }, 60_000);
  assert.equal(good.body, 'secure hello');
  const revoked = await request(gw.port, { path: '/revoked', headers: { host: 'shop.example.com' } });
  assert.equal(revoked.status, 503);
  assert.match(revoked.body, /certificate revoked/i);
  await waitFor(() => `the access log line of /revoked\n${gw.proxy.stdout()}`, () => (gw.proxy.stdout().includes('CRL /revoked') ? true : undefined));
  assert.match(gw.proxy.stdout(), /^CRL \/revoked 503 UF,URX$/m);
});
