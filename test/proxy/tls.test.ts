// TLS on both sides with certificates from SDS secrets (applied like the identity part does):
// mutual TLS with SPIFFE SAN matching, refused peers, rotation, filter chain selection by SNI and
// transport protocol (tls_inspector), h2 via ALPN, upstream TLS origination.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createHash, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { addr, configure, request, routeConfig, startRuntime, startUpstream, staticCluster, SECRET_TYPE, HCM, ROUTER } from './harness.ts';
import { makePki, sdsSecrets, sdsDownstreamMtls, sdsUpstreamTls } from './certs.ts';
import { listenLocal } from '../helpers/listen.ts';

const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';

function hcm(route: string) {
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: route, rds: { route_config_name: route, config_source: { ads: {} } }, http_filters: [ROUTER], forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { uri: true } } };
}

function tlsGet(port: number, opts: tls.ConnectionOptions, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, headers: { host: 'svc' }, agent: false, ...(opts as https.RequestOptions) }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('mTLS inbound with SDS secrets, SPIFFE SAN matching, SNI chains, ALPN h2, rotation', async (t) => {
  const pki = makePki();
  const other = makePki('Other CA');
  const up = await startUpstream('app');
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    await up.close();
    pki.cleanup();
    other.cleanup();
  });
  const server = pki.leaf('server', ['URI:spiffe://cluster.local/ns/default/sa/server', 'DNS:svc.mesh']);
  const client = pki.leaf('client', [`URI:${CLIENT_ID}`]);
  const stranger = pki.leaf('stranger', ['URI:spiffe://evil.local/ns/x/sa/y']);
  const foreign = other.leaf('foreign', [`URI:${CLIENT_ID}`]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(server, pki.ca)), []);
  await configure(h, {
    clusters: [staticCluster('app', [up.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), routeConfig('plain', [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'plaintext chain' } } }])],
    listeners: [
      {
        name: 'inbound',
        address: addr(0),
        listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }],
        filter_chains: [
          { name: 'sni', filter_chain_match: { server_names: ['svc.mesh'], transport_protocol: 'tls' }, transport_socket: sdsDownstreamMtls('spiffe://cluster.local/'), filters: [hcm('r')] },
          { name: 'tls-any', filter_chain_match: { transport_protocol: 'tls' }, transport_socket: sdsDownstreamMtls('spiffe://cluster.local/ns/nowhere/'), filters: [hcm('r')] },
          { name: 'plain', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [hcm('plain')] },
        ],
      },
    ],
  });
  const port = h.port('inbound');
  const ok = await tlsGet(port, { servername: 'svc.mesh', ca: pki.ca, cert: client.cert, key: client.key, ALPNProtocols: ['http/1.1'] });
  assert.equal(ok.status, 200);
  const echo = JSON.parse(ok.body);
  // Envoy's element: By (the server's URI SAN), Hash (SHA-256 of the client certificate), URI.
  const hash = createHash('sha256').update(new X509Certificate(client.cert).raw).digest('hex');
  assert.equal(echo.headers['x-forwarded-client-cert'], `By=spiffe://cluster.local/ns/default/sa/server;Hash=${hash};URI=${CLIENT_ID}`);
  assert.equal(echo.headers['x-forwarded-proto'], 'https');
  const info = h.streams.at(-1)!;
  assert.equal(info.mtls, true);
  assert.equal(info.downstreamPeer?.principal, CLIENT_ID);
  assert.equal(info.requestedServerName, 'svc.mesh');

  // Plaintext on the same port goes to the raw_buffer chain.
  assert.equal((await request(port)).body, 'plaintext chain');
  // A client SAN outside the chain's matcher, a foreign CA, or no certificate: refused.
  await assert.rejects(tlsGet(port, { servername: 'svc.mesh', ca: pki.ca, cert: stranger.cert, key: stranger.key }));
  await assert.rejects(tlsGet(port, { servername: 'svc.mesh', ca: pki.ca, cert: foreign.cert, key: foreign.key }));
  await assert.rejects(tlsGet(port, { servername: 'svc.mesh', ca: pki.ca }));
  // Another SNI selects the other TLS chain, whose SAN matcher refuses this client.
  await assert.rejects(tlsGet(port, { servername: 'other.mesh', ca: pki.ca, cert: client.cert, key: client.key, checkServerIdentity: () => undefined }), /socket hang up|ECONNRESET/);

  // h2 negotiated by ALPN.
  const session = http2.connect(`https://127.0.0.1:${port}`, { servername: 'svc.mesh', ca: pki.ca, cert: client.cert, key: client.key });
  t.after(() => session.destroy());
  const h2body = await new Promise<string>((resolve, reject) => {
    const s = session.request({ ':path': '/over-h2' }, { endStream: true });
    let b = '';
    s.on('data', (d) => (b += d));
    s.on('end', () => resolve(b));
    s.on('error', reject);
  });
  assert.equal(JSON.parse(h2body).url, '/over-h2');
  assert.equal(h.streams.at(-1)!.protocol, 'HTTP/2');

  // Rotation: a new certificate from SDS is served to new connections.
  const rotated = pki.leaf('server2', ['URI:spiffe://cluster.local/ns/default/sa/server', 'DNS:svc.mesh']);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(rotated, pki.ca)), []);
  const serial = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'svc.mesh', ca: pki.ca, cert: client.cert, key: client.key }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.on('error', reject);
  });
  assert.equal(serial, new X509Certificate(rotated.cert).serialNumber);
});

test('upstream TLS origination verifies the server SAN; a mismatch is a connection failure', async (t) => {
  const pki = makePki();
  const h = await startRuntime();
  const server = pki.leaf('backend', ['URI:spiffe://cluster.local/ns/default/sa/backend']);
  const backend = tls.createServer({ cert: server.cert, key: server.key, ca: pki.ca, requestCert: true }, (s) => {
    s.once('data', () => {
      const peer = s.getPeerCertificate().subjectaltname ?? '';
      const body = `peer=${peer}`;
      s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    });
  });
  const bport = await listenLocal(backend);
  t.after(() => {
    h.close();
    backend.close();
    pki.cleanup();
  });
  const client = pki.leaf('client', [`URI:${CLIENT_ID}`]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(client, pki.ca)), []);
  const upstreamTls = (san: string) => sdsUpstreamTls('backend.mesh', { san });
  await configure(h, {
    clusters: [staticCluster('good', [bport], upstreamTls('spiffe://cluster.local/ns/default/sa/backend')), staticCluster('bad', [bport], upstreamTls('spiffe://cluster.local/ns/default/sa/someone-else'))],
    routes: [routeConfig('r', [{ match: { prefix: '/good' }, route: { cluster: 'good' } }, { match: { prefix: '/bad' }, route: { cluster: 'bad' } }])],
    listeners: [{ name: 'out', address: addr(0), filter_chains: [{ filters: [hcm('r')] }] }],
  });
  const good = await request(h.port('out'), { path: '/good' });
  assert.equal(good.status, 200);
  assert.equal(good.body, `peer=URI:${CLIENT_ID}`);
  const bad = await request(h.port('out'), { path: '/bad' });
  assert.equal(bad.status, 503);
  assert.match(bad.body, /connection failure/);
  assert.equal(h.streams.at(-1)!.responseFlags !== 0, true);
});

test('TLS passthrough by SNI: tls_inspector picks a tcp_proxy chain and the handshake reaches the backend', async (t) => {
  const pki = makePki();
  const backendCert = pki.leaf('backend', ['DNS:passthrough.mesh']);
  const backend = tls.createServer({ cert: backendCert.cert, key: backendCert.key }, (s) => s.end(`hello ${s.servername}`));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(() => {
    h.close();
    backend.close();
    pki.cleanup();
  });
  const tcp = (cluster: string) => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: cluster, cluster } });
  await configure(h, {
    clusters: [staticCluster('backend', [(backend.address() as AddressInfo).port])],
    listeners: [
      {
        name: 'sni',
        address: addr(0),
        listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }],
        filter_chains: [{ filter_chain_match: { server_names: ['passthrough.mesh'] }, filters: [tcp('backend')] }],
      },
    ],
  });
  const got = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: h.port('sni'), servername: 'passthrough.mesh', ca: pki.ca });
    let d = '';
    s.on('data', (c) => (d += c));
    s.on('end', () => resolve(d));
    s.on('error', reject);
  });
  assert.equal(got, 'hello passthrough.mesh');
  // No chain for another name: the connection is closed.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.port('sni'), servername: 'other.mesh', ca: pki.ca }, () => resolve(undefined));
      s.on('error', reject);
    }),
  );
  assert.equal(h.rt.stats.all().find((s) => s.name.endsWith('.no_filter_chain_match'))?.value, 1);
});
