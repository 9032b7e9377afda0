// TLS parameters of the proxy's contexts (issue 6 §3: TLS 1.2+ with modern ciphers only): an mTLS
// listener generated like a sidecar's inbound refuses TLS 1.1 and TLS 1.2 clients offering only
// CBC suites, serves TLS 1.2 AEAD and TLS 1.3; as a client the proxy offers no CBC suite either;
// cipher_suites in Envoy's bracket syntax are accepted and unknown names refused with the field.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { addr, CLUSTER_TYPE, configure, httpListener, request, routeConfig, startRuntime, staticCluster, SECRET_TYPE } from '../proxy/harness.ts';
import { makePki, sdsSecrets } from '../proxy/certs.ts';
import { istioMutualDownstream } from '../../src/xds/translate/tls.ts';

const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** A cluster's transport_socket: TLS to backend.test, trusting `ca`, with `extra` common_tls_context fields. */
function upstreamTls(ca: string, extra: Record<string, unknown>) {
  return {
    transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM_TLS, sni: 'backend.test', common_tls_context: { validation_context: { trusted_ca: { inline_string: ca } }, ...extra } } },
  };
}

function handshake(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, ...opts }, () => {
      resolve(`${s.getProtocol()} ${s.getCipher().name}`);
      s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`refused ${e.code ?? e.message}`));
  });
}

test('inbound mTLS: TLS 1.2+ and ECDHE AEAD suites only', async (t) => {
  const pki = makePki();
  const h = await startRuntime();
  t.after(() => {
    h.close();
    pki.cleanup();
  });
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('server', ['URI:spiffe://cluster.local/ns/foo/sa/httpbin']), pki.ca)), []);
  const listener = httpListener('in', routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]));
  (listener.filter_chains as Record<string, unknown>[])[0]!.transport_socket = istioMutualDownstream();
  await configure(h, { listeners: [listener] });
  const client = pki.leaf('client', ['URI:spiffe://cluster.local/ns/foo/sa/sleep']);
  const creds = { ca: pki.ca, cert: client.cert, key: client.key };
  const port = h.port('in');
  assert.match(await handshake(port, creds), /^TLSv1\.3 TLS_/);
  assert.match(await handshake(port, { ...creds, maxVersion: 'TLSv1.2' }), /^TLSv1\.2 ECDHE-ECDSA-(AES\d+-GCM|CHACHA20-POLY1305)/);
  assert.match(await handshake(port, { ...creds, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA' }), /^refused/);
  assert.match(await handshake(port, { ...creds, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }), /^refused/);
});

test('upstream TLS offers no CBC suite; Envoy bracket cipher_suites work, unknown names are refused', async (t) => {
  const pki = makePki();
  const server = pki.leaf('backend', ['DNS:backend.test']);
  const cbcOnly = tls.createServer({ cert: server.cert, key: server.key, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA' }, (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ncbc'));
  const modern = tls.createServer({ cert: server.cert, key: server.key, maxVersion: 'TLSv1.2' }, (s) => {
    const cipher = s.getCipher().name;
    s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${cipher.length}\r\n\r\n${cipher}`);
  });
  for (const srv of [cbcOnly, modern]) await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(() => {
    h.close();
    cbcOnly.close();
    modern.close();
    pki.cleanup();
  });
  const transport = (extra: Record<string, unknown> = {}) => upstreamTls(pki.ca, extra);
  await configure(h, {
    clusters: [
      staticCluster('cbc', [(cbcOnly.address() as AddressInfo).port], transport()),
      staticCluster('modern', [(modern.address() as AddressInfo).port], transport({ tls_params: { cipher_suites: ['[ECDHE-ECDSA-CHACHA20-POLY1305|ECDHE-RSA-CHACHA20-POLY1305]'] } })),
    ],
    routes: [routeConfig('r', [{ match: { prefix: '/cbc' }, route: { cluster: 'cbc' } }, { match: { prefix: '/' }, route: { cluster: 'modern' } }])],
    listeners: [{ ...httpListener('out', 'r'), address: addr(0) }],
  });
  const cbc = await request(h.port('out'), { path: '/cbc' });
  assert.equal(cbc.status, 503);
  assert.match(cbc.body, /connection failure/);
  assert.deepEqual(await request(h.port('out')).then((r) => [r.status, r.body]), [200, 'ECDHE-ECDSA-CHACHA20-POLY1305']);
  const errs = h.apply(CLUSTER_TYPE, [staticCluster('bad', [1], transport({ tls_params: { cipher_suites: ['NOT-A-CIPHER'] } }))]);
  assert.match(errs.join('\n'), /tls_params.cipher_suites: cipher_suites \[NOT-A-CIPHER\]: .*use OpenSSL names/);
});

test('upstream TLS 1.3 prefers TLS_AES_128_GCM_SHA256, as Envoy (BoringSSL) does, with or without cipher_suites', async (t) => {
  const pki = makePki();
  const server = pki.leaf('backend', ['DNS:backend.test']);
  // A server taking the client's preference: the suite shows what the proxy offers first.
  const tls13 = tls.createServer({ cert: server.cert, key: server.key, minVersion: 'TLSv1.3', honorCipherOrder: false }, (s) => {
    const cipher = s.getCipher().name;
    s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${cipher.length}\r\n\r\n${cipher}`);
  });
  await new Promise<void>((r) => tls13.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(() => {
    h.close();
    tls13.close();
    pki.cleanup();
  });
  const port = (tls13.address() as AddressInfo).port;
  const transport = (extra: Record<string, unknown> = {}) => upstreamTls(pki.ca, extra);
  await configure(h, {
    clusters: [staticCluster('plain', [port], transport()), staticCluster('listed', [port], transport({ tls_params: { cipher_suites: ['ECDHE-RSA-AES256-GCM-SHA384'] } }))],
    routes: [routeConfig('r', [{ match: { prefix: '/listed' }, route: { cluster: 'listed' } }, { match: { prefix: '/' }, route: { cluster: 'plain' } }])],
    listeners: [{ ...httpListener('out', 'r'), address: addr(0) }],
  });
  assert.deepEqual(await request(h.port('out')).then((r) => [r.status, r.body]), [200, 'TLS_AES_128_GCM_SHA256']);
  assert.deepEqual(await request(h.port('out'), { path: '/listed' }).then((r) => [r.status, r.body]), [200, 'TLS_AES_128_GCM_SHA256']);
});
