// The ALPN of upstream TLS connections without an istio.alpn override, as Envoy's client context:
// the TLS context's alpn_protocols when set (an Istio mTLS cluster offers istio-peer-exchange,
// istio, which a PERMISSIVE peer's mTLS chain matches), else the pool's protocol; the codec is the
// cluster's whatever the server selected. Same list for router requests, mirrors and async requests.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, staticCluster, startTestRuntime, SECRET_TYPE } from './harness.ts';
import { makePki, sdsSecrets, sdsUpstreamTls, type Leaf } from './certs.ts';
import { waitFor } from '../helpers/wait.ts';

const H2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } },
};
const ISTIO_ALPN = ['istio-peer-exchange', 'istio'];

/** A TLS server speaking one HTTP version whatever ALPN it selects (as an Envoy inbound chain does); logs each handshake's offered ALPN by path of the first request. */
async function alpnLoggingServer(leaf: Leaf, h2: boolean): Promise<{ port: number; offered: Map<string, string[]>; close(): Promise<void> }> {
  const offered = new Map<string, string[]>();
  let last: string[] = [];
  const ALPNCallback = ({ protocols }: { protocols: string[] }): string => {
    last = protocols;
    return protocols.includes(h2 ? 'h2' : 'http/1.1') ? (h2 ? 'h2' : 'http/1.1') : protocols[0];
  };
  const server = h2 ? http2.createSecureServer({ key: leaf.key, cert: leaf.cert, ALPNCallback }) : https.createServer({ key: leaf.key, cert: leaf.cert, ALPNCallback });
  server.prependListener('secureConnection', (s: TLSSocket) => {
    (s as TLSSocket & { offered?: string[] }).offered = last;
    // The codec is this server's, not the selected protocol's.
    if (h2) (s as { alpnProtocol: string | false }).alpnProtocol = 'h2';
  });
  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    // (req.socket of an h2 request is a proxy of the TLS socket: it reads the property through.)
    const list = (req.socket as TLSSocket & { offered?: string[] }).offered;
    if (list && !offered.has(req.url)) offered.set(req.url, list);
    res.end(`HTTP/${req.httpVersion}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, offered, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('upstream TLS without an override offers the TLS context ALPN (else http/1.1 or h2) and speaks the cluster protocol', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const leaf = pki.leaf('backend', ['DNS:backend.mesh']);
  const h1 = await alpnLoggingServer(leaf, false);
  const h2 = await alpnLoggingServer(leaf, true);
  const h = await startTestRuntime(t, [h1, h2]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']), pki.ca)), []);
  const mesh = sdsUpstreamTls('backend.mesh', { alpn: ISTIO_ALPN });
  const plain = sdsUpstreamTls('backend.mesh');
  await configure(h, {
    clusters: [
      staticCluster('mesh-h1', [h1.port], mesh),
      staticCluster('mesh-h2', [h2.port], { ...mesh, typed_extension_protocol_options: H2_OPTIONS }),
      staticCluster('plain-h1', [h1.port], plain),
      staticCluster('plain-h2', [h2.port], { ...plain, typed_extension_protocol_options: H2_OPTIONS }),
      staticCluster('mesh-shadow', [h1.port], mesh),
    ],
    listeners: [
      httpListener(
        'l',
        routeConfig('r', [
          { match: { prefix: '/mirrored' }, route: { cluster: 'plain-h2', request_mirror_policies: [{ cluster: 'mesh-shadow' }] } },
          ...['mesh-h1', 'mesh-h2', 'plain-h1', 'plain-h2'].map((c) => ({ match: { prefix: `/${c}` }, route: { cluster: c } })),
        ]),
      ),
    ],
  });
  const get = async (path: string): Promise<string> => {
    const r = await request(h.port('l'), { path });
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    return r.body;
  };
  assert.equal(await get('/mesh-h1'), 'HTTP/1.1');
  assert.deepEqual(h1.offered.get('/mesh-h1'), ISTIO_ALPN);
  assert.equal(await get('/mesh-h2'), 'HTTP/2.0');
  assert.deepEqual(h2.offered.get('/mesh-h2'), ISTIO_ALPN);
  assert.equal(await get('/plain-h1'), 'HTTP/1.1');
  assert.deepEqual(h1.offered.get('/plain-h1'), ['http/1.1']);
  assert.equal(await get('/plain-h2'), 'HTTP/2.0');
  assert.deepEqual(h2.offered.get('/plain-h2'), ['h2']);
  // The shadow of a mirrored request (Envoy's async client) offers its own cluster's ALPN.
  assert.equal(await get('/mirrored'), 'HTTP/2.0');
  assert.deepEqual(await waitFor('mirror reached the shadow', () => h1.offered.get('/mirrored')), ISTIO_ALPN);
});
