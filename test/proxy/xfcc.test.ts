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
  // The chain the client sent: here the leaf alone, without the trusted CA.
  assert.equal(set, `${element};Cert="${encodeURIComponent(pem)}";Chain="${encodeURIComponent(pem)}"`, 'SANITIZE_SET replaces it');
});

/** An intermediate CA under the PKI's CA in `dir` and a client certificate it signs: PEMs of the leaf, the intermediate and its key. */
function chainedLeaf(dir: string, name: string): { leaf: string; intermediate: string; key: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  fs.writeFileSync(path.join(dir, `${name}-int.ext`), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}-int.key`, '-out', `${name}-int.csr`, '-subj', `/CN=${name} intermediate`]);
  run(['x509', '-req', '-in', `${name}-int.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}-int.crt`, '-days', '1', '-extfile', `${name}-int.ext`]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=URI:${CLIENT_ID}\nextendedKeyUsage=clientAuth\n`);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  run(['x509', '-req', '-in', `${name}.csr`, '-CA', `${name}-int.crt`, '-CAkey', `${name}-int.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`]);
  const read = (f: string) => new X509Certificate(fs.readFileSync(path.join(dir, f), 'utf8')).toString();
  return { leaf: read(`${name}.crt`), intermediate: read(`${name}-int.crt`), key: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8') };
}

/** The certificates (PEM) of the Chain= value of an XFCC element. */
function chainOf(xfcc: string | undefined): string[] {
  const m = /;Chain="([^"]*)"/.exec(xfcc ?? '');
  assert.ok(m, `no Chain in ${xfcc}`);
  return decodeURIComponent(m[1]).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? [];
}

test('XFCC Chain: the chain the client presented, leaf first, not the trust anchor the verifier found', async (t) => {
  const pki = makePki();
  const other = makePki('Other CA');
  t.after(() => {
    pki.cleanup();
    other.cleanup();
  });
  const up: Upstream = await startUpstream('app');
  const h = await startTestRuntime(t, [up]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('server', [`URI:${SERVER_ID}`]), pki.ca)), []);
  const acceptUntrusted = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
        combined_validation_context: { default_validation_context: { trust_chain_verification: 'ACCEPT_UNTRUSTED' }, validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } } },
      },
    },
  };
  const listener = (name: string, transport: Record<string, unknown>) => ({
    name,
    address: addr(0),
    filter_chains: [{ transport_socket: transport, filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), http_filters: [ROUTER], forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { chain: true } } }] }],
  });
  await configure(h, { clusters: [staticCluster('app', [up.port])], listeners: [listener('verified', OPTIONAL_MTLS), listener('untrusted', acceptUntrusted)] });
  const tlsOnly = { ca: pki.ca, servername: 'svc', checkServerIdentity: () => undefined };
  const root = new X509Certificate(pki.ca).toString();

  // A leaf the trust anchor signed: the leaf alone (the anchor is what the verifier found, not what the client sent).
  const direct = pki.leaf('direct', [`URI:${CLIENT_ID}`]);
  assert.deepEqual(chainOf(await get(h.port('verified'), { ...tlsOnly, cert: direct.cert, key: direct.key })), [new X509Certificate(direct.cert).toString()]);

  // Leaf and intermediate sent: both, not the anchor; with the anchor sent too, still without it
  // (Node cannot tell it from the one its verifier found; Envoy would list it).
  const chained = chainedLeaf(pki.dir, 'chained');
  assert.deepEqual(chainOf(await get(h.port('verified'), { ...tlsOnly, cert: chained.leaf + chained.intermediate, key: chained.key })), [chained.leaf, chained.intermediate]);
  assert.deepEqual(chainOf(await get(h.port('verified'), { ...tlsOnly, cert: chained.leaf + chained.intermediate + root, key: chained.key })), [chained.leaf, chained.intermediate]);

  // A chain this proxy does not trust (ACCEPT_UNTRUSTED), root included: exactly what was sent.
  const foreign = chainedLeaf(other.dir, 'foreign');
  const foreignRoot = new X509Certificate(other.ca).toString();
  assert.deepEqual(chainOf(await get(h.port('untrusted'), { ...tlsOnly, cert: foreign.leaf + foreign.intermediate + foreignRoot, key: foreign.key })), [foreign.leaf, foreign.intermediate, foreignRoot]);
});
