// A Gateway server's tls.caCrl, as istiod's ApplyToCommonTLSContext applies it to client
// certificates: the crl file of the validation context with MUTUAL / OPTIONAL_MUTUAL from files and
// with ISTIO_MUTUAL; left out, with a warning, with a credentialName (the credential's own CA) and
// where no client certificate is checked (SIMPLE). Then through the control plane and a real
// `rig proxy` gateway with certificates and a CRL made by `openssl ca`: a client whose certificate
// the CRL revokes cannot complete the handshake, the other gets its answer.
import assert from 'node:assert/strict';
import https from 'node:https';
import { test } from 'node:test';
import { loadDocuments } from '../../src/api/index.ts';
import { LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { makeCrlPki } from '../helpers/crl-pki.ts';
import { startEdgeGateway } from '../helpers/edge-gateway.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { waitFor } from '../helpers/wait.ts';
import { assertEnvoyResource, buildPush, gatewayProxy, parseYaml } from './fixtures.ts';

const gateway = (servers: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [${servers}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: istio-system }
spec:
  hosts: ['*']
  gateways: [gw]
  http: [{ directResponse: { status: 200, body: { string: "hello, client" } } }]
`;

const server = (port: number, tls: string) => `{ port: { number: ${port}, name: https-${port}, protocol: HTTPS }, hosts: ['*'], tls: ${tls} }`;

function validationOf(listener: EnvoyJson): EnvoyJson | undefined {
  const chain = (listener.filter_chains as EnvoyJson[])[0];
  const common = ((chain.transport_socket as EnvoyJson).typed_config as EnvoyJson).common_tls_context as EnvoyJson;
  return (common.validation_context ?? (common.combined_validation_context as EnvoyJson | undefined)?.default_validation_context) as EnvoyJson | undefined;
}

test('a Gateway server tls.caCrl: the crl of the client-certificate validation with MUTUAL from files and ISTIO_MUTUAL; left out, with a warning, with a credentialName or in SIMPLE mode', () => {
  const certs = 'serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem';
  const yaml = gateway(
    [
      server(8443, `{ mode: MUTUAL, ${certs}, caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/ca.crl }`),
      server(8444, '{ mode: ISTIO_MUTUAL, caCrl: /etc/certs/ca.crl }'),
      server(8445, '{ mode: MUTUAL, credentialName: shop-cert, caCrl: /etc/certs/ca.crl }'),
      server(8446, `{ mode: SIMPLE, ${certs}, caCrl: /etc/certs/ca.crl }`),
    ].join(', '),
  );
  const gw = gatewayProxy({ istio: 'ingressgateway' });
  const listeners = GENERATORS[LISTENER_TYPE].generate(buildPush(parseYaml(yaml), [gw]), gw, undefined);
  const on = (port: number) => {
    const l = listeners.find((x) => ((x.address as EnvoyJson).socket_address as EnvoyJson).port_value === port) ?? assert.fail(`no listener on ${port}`);
    assertEnvoyResource(LISTENER_TYPE, l);
    return l;
  };
  assert.deepEqual(validationOf(on(8443)), { crl: { filename: '/etc/certs/ca.crl' }, trusted_ca: { filename: '/etc/certs/ca.pem' } });
  assert.deepEqual(validationOf(on(8444)), { crl: { filename: '/etc/certs/ca.crl' } });
  assert.doesNotMatch(JSON.stringify(on(8445)), /ca\.crl/);
  assert.doesNotMatch(JSON.stringify(on(8446)), /ca\.crl/);

  const warnings = loadDocuments(yaml, 'gw.yaml').diagnostics.filter((d) => d.severity === 'Warning').map((d) => `${d.path}: ${d.message}`);
  assert.deepEqual(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0], /^spec\.servers\[2\]\.tls\.caCrl: tls\.caCrl with credentialName/);
  assert.match(warnings[1], /^spec\.servers\[3\]\.tls\.caCrl: tls\.caCrl in SIMPLE mode/);
});

test('through the control plane and a rig gateway (MUTUAL): a client certificate the caCrl revokes fails the handshake, the other is answered', async (t) => {
  const pki = makeCrlPki(t, 'client.example.com');
  const tls = `{ mode: MUTUAL, serverCertificate: ${pki.good.certFile}, privateKey: ${pki.good.keyFile}, caCertificates: ${pki.caFile}, caCrl: ${pki.crlFile} }`;
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-gw-crl-', config: gateway(server(8443, tls)) });
  const gw = await startEdgeGateway(t, mesh, { name: 'gw-crl', serverPort: 8443 });
  const get = (client: { cert: string; key: string }) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: gw.port, path: '/', servername: 'client.example.com', ca: pki.ca, cert: client.cert, key: client.key, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
    });
  const good = await waitFor(() => `the good client answered through the gateway\n${gw.proxy.log()}`, () => get(pki.good).catch(() => undefined), 60_000);
  assert.deepEqual(good, { status: 200, body: 'hello, client' });
  await assert.rejects(get(pki.revoked), (err: NodeJS.ErrnoException) => {
    assert.match(`${err.code} ${err.message}`, /revoked|ECONNRESET|socket hang up|alert/i);
    return true;
  });
});
