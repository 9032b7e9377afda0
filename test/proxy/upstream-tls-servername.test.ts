// Requests with different Host headers to one TLS cluster share its connections, as in Envoy, where
// SNI is the cluster's (its UpstreamTlsContext sni), not the request's. undici derives a TLS
// server name from each request's Host and closes its connection to switch names unless the
// dispatch names one; the pools' dispatches all name the same (upstream-pool.ts).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, staticCluster, startTestRuntime, SECRET_TYPE } from './harness.ts';
import { makePki, sdsSecrets, sdsUpstreamTls, type Leaf } from './certs.ts';

const H2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } },
};

/** A TLS server (HTTP/2 or HTTP/1.1) that counts its TLS connections and the SNI of each. */
async function countingServer(leaf: Leaf, h2: boolean): Promise<{ port: number; snis: string[]; close(): Promise<void> }> {
  const snis: string[] = [];
  const server = h2 ? http2.createSecureServer({ key: leaf.key, cert: leaf.cert }) : https.createServer({ key: leaf.key, cert: leaf.cert });
  server.on('secureConnection', (s: { servername?: string | false }) => snis.push(String(s.servername)));
  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => res.end(String(req.headers[':authority'] ?? req.headers.host)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, snis, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('requests with different Host headers reuse one TLS connection to the cluster, with the cluster SNI (HTTP/2 and HTTP/1.1)', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const leaf = pki.leaf('backend', ['DNS:backend.mesh']);
  const h2 = await countingServer(leaf, true);
  const h1 = await countingServer(leaf, false);
  const h = await startTestRuntime(t, [h2, h1]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']), pki.ca)), []);
  const tls = sdsUpstreamTls('backend.mesh');
  await configure(h, {
    clusters: [staticCluster('tls-h2', [h2.port], { ...tls, typed_extension_protocol_options: H2_OPTIONS }), staticCluster('tls-h1', [h1.port], tls)],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/h2' }, route: { cluster: 'tls-h2' } }, { match: { prefix: '/h1' }, route: { cluster: 'tls-h1' } }]))],
  });
  for (const [path, server] of [['/h2', h2], ['/h1', h1]] as const) {
    for (const host of ['a.example', 'b.example', 'a.example', '10.0.0.1', 'b.example']) {
      const r = await request(h.port('l'), { path, headers: { host } });
      assert.equal(r.status, 200, `${path} ${host}: ${r.body}`);
      assert.equal(r.body, host);
    }
    assert.deepEqual(server.snis, ['backend.mesh'], `${path}: one TLS connection, SNI from the cluster`);
  }
});
