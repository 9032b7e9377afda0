// TLS context fields that used to be accepted without effect: tls_params.ecdh_curves and
// signature_algorithms restrict the handshake, SAN matchers carried by an SDS validation secret are
// checked; a DataSource's watched_directory and a non-ADS sds_config warn by path, and
// trust_chain_verification ACCEPT_UNTRUSTED no longer does (honoured: upstream-accept-untrusted.test.ts;
// max_session_keys 0 is honoured: tls-resumption.test.ts).
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { CLUSTER_TYPE, configure, httpListener, request, routeConfig, SECRET_TYPE, startRuntime, staticCluster, type Harness } from '../proxy/harness.ts';
import { makePki, type TestPki } from '../proxy/certs.ts';

const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const BACKEND_ID = 'spiffe://cluster.local/ns/default/sa/backend';

function handshake(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, ...opts }, () => {
      resolve('ok');
      s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`refused ${e.code ?? e.message}`));
  });
}

/** A TLS backend (ECDSA P-256 certificate) that answers one HTTP/1.1 request per connection and closes; records whether each handshake resumed. */
async function startBackend(pki: TestPki): Promise<{ port: number; resumed: boolean[]; close(): void }> {
  const cert = pki.leaf('backend', [`URI:${BACKEND_ID}`]);
  const resumed: boolean[] = [];
  const server = tls.createServer({ cert: cert.cert, key: cert.key }, (s) => {
    resumed.push(s.isSessionReused());
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, resumed, close: () => server.close() };
}

async function setup(t: { after(fn: () => unknown): void }): Promise<{ h: Harness; pki: TestPki; backend: Awaited<ReturnType<typeof startBackend>> }> {
  const pki = makePki();
  const backend = await startBackend(pki);
  const h = await startRuntime();
  t.after(() => {
    h.close();
    backend.close();
    pki.cleanup();
  });
  return { h, pki, backend };
}

const upstream = (common: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM_TLS, sni: 'backend.mesh', common_tls_context: common, ...extra } },
});

/** A listener routing /<cluster> to that cluster. */
async function route(h: Harness, clusters: Record<string, unknown>[]): Promise<number> {
  const routes = clusters.map((c) => ({ match: { prefix: `/${c.name as string}` }, route: { cluster: c.name } }));
  await configure(h, { clusters, listeners: [httpListener('out', routeConfig('r', routes))] });
  return h.port('out');
}

test('tls_params.ecdh_curves and signature_algorithms restrict the handshake; unknown names are refused with the field', async (t) => {
  const { h, pki, backend } = await setup(t);
  const server = pki.leaf('server', ['DNS:svc.mesh']);
  const trust = { validation_context: { trusted_ca: { inline_string: pki.ca } } };
  const listener = httpListener('in', routeConfig('in', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]));
  (listener.filter_chains as Record<string, unknown>[])[0]!.transport_socket = {
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': DOWNSTREAM_TLS, common_tls_context: { tls_params: { ecdh_curves: ['P-384'] }, tls_certificates: [{ certificate_chain: { inline_string: server.cert }, private_key: { inline_string: server.key } }] } },
  };
  await configure(h, { listeners: [listener] });
  assert.equal(await handshake(h.port('in'), { ca: pki.ca, ecdhCurve: 'P-384' }), 'ok');
  assert.match(await handshake(h.port('in'), { ca: pki.ca, ecdhCurve: 'X25519:P-256' }), /^refused/, 'a client without P-384 has no curve in common');

  const port = await route(h, [
    staticCluster('ecdsa', [backend.port], upstream({ ...trust, tls_params: { signature_algorithms: ['ecdsa_secp256r1_sha256'] } })),
    staticCluster('rsa', [backend.port], upstream({ ...trust, tls_params: { signature_algorithms: ['rsa_pss_rsae_sha256'] } })),
  ]);
  assert.equal((await request(port, { path: '/ecdsa' })).body, 'ok');
  const rsa = await request(port, { path: '/rsa' });
  assert.equal(rsa.status, 503, 'an ECDSA server cannot sign with the only algorithm the proxy offers');
  assert.equal(backend.resumed.length, 1, 'the refused handshake never reached the backend handler');

  const errs = h.apply(CLUSTER_TYPE, [staticCluster('bad', [1], upstream({ ...trust, tls_params: { ecdh_curves: ['NOT-A-CURVE'], signature_algorithms: ['nope_sha1'] } }))]);
  assert.match(errs.join('\n'), /tls_params\.ecdh_curves: ecdh_curves \[NOT-A-CURVE\]/);
  assert.match(errs.join('\n'), /tls_params\.signature_algorithms: signature_algorithms \[nope_sha1\]/);
});

test('SAN matchers of an SDS validation secret are checked', async (t) => {
  const { h, pki, backend } = await setup(t);
  const validation = (name: string, san: string) => ({ name, validation_context: { trusted_ca: { inline_string: pki.ca }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: san } }] } });
  assert.deepEqual(h.apply(SECRET_TYPE, [validation('backend-ca', BACKEND_ID), validation('other-ca', 'spiffe://cluster.local/ns/default/sa/other')]), []);
  const sds = (name: string) => ({ validation_context_sds_secret_config: { name, sds_config: { ads: {} } } });
  const port = await route(h, [
    staticCluster('right', [backend.port], upstream(sds('backend-ca'))),
    staticCluster('wrong', [backend.port], upstream(sds('other-ca'))),
  ]);
  assert.equal((await request(port, { path: '/right' })).body, 'ok');
  const wrong = await request(port, { path: '/wrong' });
  assert.equal(wrong.status, 503, "the backend's SAN is not the one the secret asks for");
  assert.equal((await request(port, { path: '/right' })).body, 'ok');
  assert.deepEqual([...h.rt.warnings.values()].flat(), [], 'nothing here is unsupported');
});

test('watched_directory and a non-ADS sds_config warn by path; trust_chain_verification ACCEPT_UNTRUSTED does not', async (t) => {
  const { h, pki, backend } = await setup(t);
  const errs = [
    ...h.apply(SECRET_TYPE, [{ name: 'ca', validation_context: { trusted_ca: { inline_string: pki.ca, watched_directory: { path: '/tmp' } } } }]),
    ...h.apply(CLUSTER_TYPE, [
      staticCluster('untrusted', [backend.port], upstream({ validation_context: { trusted_ca: { inline_string: pki.ca }, trust_chain_verification: 'ACCEPT_UNTRUSTED' } })),
      staticCluster('file-sds', [backend.port], upstream({ validation_context_sds_secret_config: { name: 'file-ca', sds_config: { path_config_source: { path: '/etc/ca.yaml' } } } })),
      staticCluster('quiet', [backend.port], upstream({ tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { api_config_source: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] } } }] })),
    ]),
  ];
  assert.deepEqual(errs, []);
  const warnings = [...h.rt.warnings.values()].flat().join('\n');
  assert.match(warnings, /trusted_ca\.watched_directory: files are read when the config is applied/);
  assert.doesNotMatch(warnings, /trust_chain_verification/);
  assert.match(warnings, /file-sds.*sds_config: only ADS is supported as a secret source.*"file-ca"/);
  assert.doesNotMatch(warnings, /quiet/, "the agent's own secret from sds-grpc, as Istio configures it");
});
