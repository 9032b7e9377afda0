// x-forwarded-client-cert as Envoy writes it, through the proxy on real mTLS connections: every
// forward_client_cert_details mode with and without a client certificate, and the element's
// details (By, Hash, Subject, URI, DNS, Cert, Chain) from set_current_client_cert_details.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import { test } from 'node:test';
import { addr, configure, routeConfig, startTestRuntime, startUpstream, staticCluster, SECRET_TYPE, HCM, ROUTER, type Upstream } from './harness.ts';
import { makePki, sdsDownstreamOptionalMtls, sdsSecrets } from './certs.ts';

const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/server';
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const OPTIONAL_MTLS = sdsDownstreamOptionalMtls();

/** A client certificate with an empty subject and a URI SAN only, as Istio issues them. */
function subjectlessLeaf(dir: string): { cert: string; key: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'istio.key', '-out', 'istio.csr', '-subj', '/']);
  fs.writeFileSync(path.join(dir, 'istio.ext'), `subjectAltName=critical,URI:${CLIENT_ID}\nextendedKeyUsage=clientAuth\n`);
  run(['x509', '-req', '-in', 'istio.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'istio.crt', '-days', '1', '-extfile', 'istio.ext']);
  return { cert: fs.readFileSync(path.join(dir, 'istio.crt'), 'utf8'), key: fs.readFileSync(path.join(dir, 'istio.key'), 'utf8') };
}

function get(port: number, opts: https.RequestOptions, xfcc?: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: 'svc' };
    if (xfcc) headers['x-forwarded-client-cert'] = xfcc;
    const req = https.request({ host: '127.0.0.1', port, path: '/', headers, agent: false, ...opts }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve((JSON.parse(body) as { headers: Record<string, string | undefined> }).headers['x-forwarded-client-cert']));
    });
    req.on('error', reject);
    req.end();
  });
}

test('forward_client_cert_details modes and set_current_client_cert_details as in Envoy', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const up: Upstream = await startUpstream('app');
  const h = await startTestRuntime(t, [up]);
  const server = pki.leaf('server', [`URI:${SERVER_ID}`]);
  const client = pki.leaf('client', [`URI:${CLIENT_ID}`, 'DNS:client.mesh', 'DNS:alt.mesh']);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(server, pki.ca)), []);
  const listener = (name: string, extra: Record<string, unknown>) => ({
    name,
    address: addr(0),
    filter_chains: [{ transport_socket: OPTIONAL_MTLS, filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), http_filters: [ROUTER], ...extra } }] }],
  });
  const all = { subject: true, uri: true, dns: true, cert: true, chain: true };
  await configure(h, {
    clusters: [staticCluster('app', [up.port])],
    listeners: [
      listener('sanitize', {}),
      listener('forward', { forward_client_cert_details: 'FORWARD_ONLY' }),
      listener('always', { forward_client_cert_details: 'ALWAYS_FORWARD_ONLY' }),
      listener('append', { forward_client_cert_details: 'APPEND_FORWARD', set_current_client_cert_details: { subject: true, dns: true, uri: true } }),
      listener('set', { forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: all }),
    ],
  });
  // The server certificate names a SPIFFE id, not a host: the chain is checked, not the name.
  const tlsOnly = { ca: pki.ca, servername: 'svc', checkServerIdentity: () => undefined };
  const mtls = { ...tlsOnly, cert: client.cert, key: client.key };
  const spoof = 'By=spiffe://evil;URI=spiffe://evil/sa/admin';
  const hash = createHash('sha256').update(new X509Certificate(client.cert).raw).digest('hex');

  assert.equal(await get(h.port('sanitize'), mtls, spoof), undefined, 'SANITIZE removes it, client certificate or not');
  assert.equal(await get(h.port('forward'), mtls, spoof), spoof, 'FORWARD_ONLY forwards it on mTLS');
  assert.equal(await get(h.port('forward'), tlsOnly, spoof), undefined, '... and removes it without a client certificate');
  assert.equal(await get(h.port('always'), tlsOnly, spoof), spoof, 'ALWAYS_FORWARD_ONLY forwards it anyway');
  const element = `By=${SERVER_ID};Hash=${hash};Subject="CN=client";URI=${CLIENT_ID};DNS=client.mesh;DNS=alt.mesh`;
  assert.equal(await get(h.port('append'), mtls, spoof), `${spoof},${element}`, 'APPEND_FORWARD appends this proxy element (Istio inbound)');
  assert.equal(await get(h.port('append'), mtls), element);
  assert.equal(await get(h.port('append'), tlsOnly, spoof), undefined, '... and removes the header without a client certificate');

  // Istio's workload certificates have an empty subject: Subject="" (Istio's documented example).
  const istio = subjectlessLeaf(pki.dir);
  const istioHash = createHash('sha256').update(new X509Certificate(istio.cert).raw).digest('hex');
  assert.equal(await get(h.port('append'), { ...tlsOnly, cert: istio.cert, key: istio.key }), `By=${SERVER_ID};Hash=${istioHash};Subject="";URI=${CLIENT_ID}`);

  const set = await get(h.port('set'), mtls, spoof);
  const pem = new X509Certificate(client.cert).toString();
  const ca = new X509Certificate(pki.ca).toString();
  // The chain as verified, up to the trusted CA (Envoy's holds what the client sent: here the leaf).
  assert.equal(set, `${element};Cert="${encodeURIComponent(pem)}";Chain="${encodeURIComponent(pem + ca)}"`, 'SANITIZE_SET replaces it');
});
