// TLS session resumption on both sides of the proxy (issue 6 §7: no full handshake per
// connection): the inbound mTLS listener resumes a client's session (openssl s_client -reconnect
// and node's isSessionReused) and still knows the client's SPIFFE id; upstream TLS connections of
// HTTP/1.1 and HTTP/2 pools and tcp_proxy resume the session of their host, except with
// max_session_keys 0; secrets rotation starts over with full handshakes (no session made under the
// old certificates is resumed).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { addr, configure, request, routeConfig, startRuntime, startUpstream, staticCluster, SECRET_TYPE, HCM, ROUTER } from '../proxy/harness.ts';
import { makePki, sdsSecrets, sdsDownstreamMtls, sdsUpstreamTls } from '../proxy/certs.ts';

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/server';

interface Exchange {
  reused: boolean;
  session?: Buffer;
  response: string;
}

/** One HTTP/1.1 request over a fresh TLS connection, offering `session`; resolves once the server closed. */
function exchange(port: number, opts: tls.ConnectionOptions, session?: Buffer): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    let response = '';
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'svc.mesh', ALPNProtocols: ['http/1.1'], ...opts, session }, () => {
      s.write('GET /who HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n');
    });
    s.on('session', (b: Buffer) => (latest = b));
    s.on('data', (d: Buffer) => (response += d.toString()));
    s.on('end', () => resolve({ reused: s.isSessionReused(), session: latest, response }));
    s.on('error', reject);
  });
}

test('inbound mTLS resumes client sessions (tickets), keeps the peer identity, and starts over after rotation', async (t) => {
  const pki = makePki();
  const up = await startUpstream('app');
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    await up.close();
    pki.cleanup();
  });
  const server = pki.leaf('server', [`URI:${SERVER_ID}`, 'DNS:svc.mesh']);
  const client = pki.leaf('client', [`URI:${CLIENT_ID}`]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(server, pki.ca)), []);
  await configure(h, {
    clusters: [staticCluster('app', [up.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }])],
    listeners: [
      {
        name: 'inbound',
        address: addr(0),
        filter_chains: [
          {
            transport_socket: sdsDownstreamMtls('spiffe://cluster.local/'),
            filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'in', rds: { route_config_name: 'r', config_source: { ads: {} } }, http_filters: [ROUTER], forward_client_cert_details: 'SANITIZE_SET', set_current_client_cert_details: { uri: true } } }],
          },
        ],
      },
    ],
  });
  const port = h.port('inbound');
  const creds = { ca: pki.ca, cert: client.cert, key: client.key };

  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    const first = await exchange(port, { ...creds, maxVersion });
    assert.equal(first.reused, false, maxVersion);
    assert.ok(first.session, `${maxVersion}: the proxy sent a session ticket`);
    const again = await exchange(port, { ...creds, maxVersion }, first.session);
    assert.equal(again.reused, true, `${maxVersion}: the second connection resumed the session`);
    // The resumed connection still carries the client's verified SPIFFE id.
    assert.match(again.response, /^HTTP\/1\.1 200/);
    assert.ok(again.response.includes(`;URI=${CLIENT_ID}"`), again.response);
    assert.equal(h.streams.at(-1)!.downstreamPeer?.principal, CLIENT_ID);
  }

  // openssl s_client -reconnect: five reconnections with the first session, each "Reused".
  fs.writeFileSync(path.join(pki.dir, 'c.crt'), client.cert);
  fs.writeFileSync(path.join(pki.dir, 'c.key'), client.key);
  const stdout = await new Promise<string>((resolve) => {
    const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'svc.mesh', '-CAfile', path.join(pki.dir, 'ca.crt'), '-cert', path.join(pki.dir, 'c.crt'), '-key', path.join(pki.dir, 'c.key'), '-tls1_2', '-reconnect'];
    const child = execFile('openssl', args, { timeout: 10_000 }, (_err, out) => resolve(String(out)));
    child.stdin?.end();
  });
  assert.equal(stdout.match(/^Reused, /gm)?.length, 5, stdout);

  // Rotation: a session from before is not resumed; the new certificate is presented.
  const held = (await exchange(port, { ...creds, maxVersion: 'TLSv1.3' })).session;
  const rotated = pki.leaf('server2', [`URI:${SERVER_ID}`, 'DNS:svc.mesh']);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(rotated, pki.ca)), []);
  const afterRotation = await new Promise<{ reused: boolean; serial: string }>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'svc.mesh', ...creds, session: held }, () => {
      resolve({ reused: s.isSessionReused(), serial: s.getPeerCertificate().serialNumber });
      s.destroy();
    });
    s.on('error', reject);
  });
  assert.deepEqual(afterRotation, { reused: false, serial: new X509Certificate(rotated.cert).serialNumber });
});

test('upstream TLS (HTTP pool and tcp_proxy) resumes the session per host; new client secrets mean a full handshake', async (t) => {
  const pki = makePki();
  const backendCert = pki.leaf('backend', ['URI:spiffe://cluster.local/ns/default/sa/backend']);
  const handshakes: { reused: boolean; peerSerial: string }[] = [];
  const backend = tls.createServer({ cert: backendCert.cert, key: backendCert.key, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (s) => {
    handshakes.push({ reused: s.isSessionReused(), peerSerial: s.getPeerCertificate().serialNumber });
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(() => {
    h.close();
    backend.close();
    pki.cleanup();
  });
  const client = pki.leaf('client', [`URI:${CLIENT_ID}`]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(client, pki.ca)), []);
  const transport = sdsUpstreamTls('backend.mesh', { san: 'spiffe://cluster.local/ns/default/sa/backend' });
  const bport = (backend.address() as AddressInfo).port;
  await configure(h, {
    clusters: [staticCluster('http', [bport], transport), staticCluster('tcp', [bport], transport)],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'http' } }])],
    listeners: [
      { name: 'out', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'out', rds: { route_config_name: 'r', config_source: { ads: {} } }, http_filters: [ROUTER] } }] }] },
      { name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: 'tcp', cluster: 'tcp' } }] }] },
    ],
  });
  // The backend closes every connection, so each request is a new upstream connection.
  for (let i = 0; i < 4; i++) assert.equal((await request(h.port('out'))).body, 'ok');
  assert.deepEqual(
    handshakes.map((x) => x.reused),
    [false, true, true, true],
  );
  handshakes.length = 0;
  for (let i = 0; i < 3; i++) assert.equal((await request(h.port('tcp'))).body, 'ok');
  assert.deepEqual(
    handshakes.map((x) => x.reused),
    [false, true, true],
  );

  // New client certificate: the cached sessions (made with the old one) are not offered.
  handshakes.length = 0;
  const renewed = pki.leaf('client2', [`URI:${CLIENT_ID}`]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(renewed, pki.ca)), []);
  assert.equal((await request(h.port('out'))).body, 'ok');
  assert.equal((await request(h.port('out'))).body, 'ok');
  const serial = new X509Certificate(renewed.cert).serialNumber;
  assert.deepEqual(handshakes, [
    { reused: false, peerSerial: serial },
    { reused: true, peerSerial: serial },
  ]);
});

test('upstream max_session_keys 0: every connection a full handshake (HTTP/1.1 pool, tcp_proxy, HTTP/2 pool); HTTP/2 pools resume otherwise', async (t) => {
  const pki = makePki();
  const backendCert = pki.leaf('backend', ['URI:spiffe://cluster.local/ns/default/sa/backend']);
  const serverTls = { cert: backendCert.cert, key: backendCert.key, ca: pki.ca, requestCert: true, rejectUnauthorized: true };
  const handshakes: boolean[] = [];
  const backend = tls.createServer(serverTls, (s) => {
    handshakes.push(s.isSessionReused());
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
  });
  // HTTP/2: each connection serves one stream, then the server closes it (GOAWAY).
  const h2Handshakes: boolean[] = [];
  const h2 = http2.createSecureServer({ ...serverTls, ALPNProtocols: ['h2'] });
  h2.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('ok');
    stream.session?.close();
  });
  h2.on('secureConnection', (s: tls.TLSSocket) => h2Handshakes.push(s.isSessionReused()));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(() => {
    h.close();
    backend.close();
    h2.close();
    pki.cleanup();
  });
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('client', [`URI:${CLIENT_ID}`]), pki.ca)), []);
  const transport = (extra: Record<string, unknown>, alpn?: string[]) => {
    const ts = sdsUpstreamTls('backend.mesh', { san: 'spiffe://cluster.local/ns/default/sa/backend', alpn }).transport_socket as { typed_config: Record<string, unknown> };
    return { transport_socket: { ...ts, typed_config: { ...ts.typed_config, ...extra } } };
  };
  const none = transport({ max_session_keys: 0 });
  const bport = (backend.address() as AddressInfo).port;
  const h2port = (h2.address() as AddressInfo).port;
  const H2 = { http2_protocol_options: {} };
  await configure(h, {
    clusters: [
      staticCluster('http', [bport], none),
      staticCluster('tcp', [bport], none),
      staticCluster('h2', [h2port], { ...H2, ...transport({}, ['h2']) }),
      staticCluster('h2-none', [h2port], { ...H2, ...transport({ max_session_keys: 0 }, ['h2']) }),
    ],
    routes: [routeConfig('r', [{ match: { prefix: '/h2-none' }, route: { cluster: 'h2-none' } }, { match: { prefix: '/h2' }, route: { cluster: 'h2' } }, { match: { prefix: '/' }, route: { cluster: 'http' } }])],
    listeners: [
      { name: 'out', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'out', rds: { route_config_name: 'r', config_source: { ads: {} } }, http_filters: [ROUTER] } }] }] },
      { name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: 'tcp', cluster: 'tcp' } }] }] },
    ],
  });
  assert.deepEqual([...h.rt.warnings.values()].flat(), [], 'max_session_keys is honoured, not warned about');
  for (let i = 0; i < 3; i++) assert.equal((await request(h.port('out'))).body, 'ok');
  assert.deepEqual(handshakes, [false, false, false], 'HTTP/1.1 pool');
  handshakes.length = 0;
  for (let i = 0; i < 2; i++) assert.equal((await request(h.port('tcp'))).body, 'ok');
  assert.deepEqual(handshakes, [false, false], 'tcp_proxy');
  for (let i = 0; i < 3; i++) assert.equal((await request(h.port('out'), { path: '/h2' })).body, 'ok');
  assert.deepEqual(h2Handshakes, [false, true, true], 'an HTTP/2 pool resumes its last session');
  h2Handshakes.length = 0;
  for (let i = 0; i < 3; i++) assert.equal((await request(h.port('out'), { path: '/h2-none' })).body, 'ok');
  assert.deepEqual(h2Handshakes, [false, false, false], 'HTTP/2 pool with max_session_keys 0');
});
