// ext_authz include_peer_certificate and include_tls_session, on real TLS connections through the
// proxy to a real gRPC Authorization server: the client certificate (URL-encoded PEM) and the SNI
// reach the CheckRequest only when asked, from the HTTP and the network filter; an http_service
// check cannot carry them, which warns. Principals as Envoy: each side's certificate URI SAN, else
// DNS SAN (else subject, not exercised here); source service from x-envoy-downstream-service-cluster,
// a connection's SNI as destination service.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import net from 'node:net';
import { test } from 'node:test';
import { HTTP_EXT_AUTHZ_TYPE, NETWORK_EXT_AUTHZ_TYPE, TCP_PROXY_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { makePki, sdsDownstreamOptionalMtls, sdsSecrets } from '../proxy/certs.ts';
import { addr, configure, HCM, ROUTER, routeConfig, SECRET_TYPE, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';
import { grpcCluster, startGrpcAuthz } from './ext-authz-servers.ts';

const OPTIONAL_MTLS = sdsDownstreamOptionalMtls();
const GRPC = { grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '5s' } };

function httpListener(name: string, extAuthz: EnvoyJson): EnvoyJson {
  const ext = { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': HTTP_EXT_AUTHZ_TYPE, transport_api_version: 'V3', ...extAuthz } };
  const hcm = { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), http_filters: [ext, ROUTER] };
  return { name, address: addr(0), filter_chains: [{ transport_socket: OPTIONAL_MTLS, filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] };
}

function tcpListener(name: string, extra: EnvoyJson): EnvoyJson {
  return {
    name,
    address: addr(0),
    filter_chains: [
      {
        transport_socket: OPTIONAL_MTLS,
        filters: [
          { name: 'envoy.filters.network.ext_authz', typed_config: { '@type': NETWORK_EXT_AUTHZ_TYPE, stat_prefix: name, ...GRPC, ...extra } },
          { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: name, cluster: 'echo' } },
        ],
      },
    ],
  };
}

function get(port: number, opts: https.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', agent: false, ...opts }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends a line over TLS through a tcp_proxy listener and returns the echo. */
function tlsLine(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...opts }, () => s.write('ping\n'));
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) {
        s.end();
        resolve(got.trim());
      }
    });
    s.on('error', reject);
  });
}

test('include_peer_certificate and include_tls_session put the client certificate and SNI in the gRPC CheckRequest', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  t.after(() => authz.close());
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => echo.close(() => r())));
  const h = await startTestRuntime(t, [app]);
  const client = pki.leaf('client', ['URI:spiffe://cluster.local/ns/foo/sa/client']);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('server', ['URI:spiffe://cluster.local/ns/foo/sa/server']), pki.ca)), []);
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('echo', [(echo.address() as AddressInfo).port]), grpcCluster('authz', authz.port)],
    listeners: [
      httpListener('both', { ...GRPC, include_peer_certificate: true, include_tls_session: true }),
      httpListener('neither', GRPC),
      tcpListener('tcp', { include_peer_certificate: true, include_tls_session: true }),
    ],
  });
  const tlsOnly = { ca: pki.ca, servername: 'svc.example', checkServerIdentity: () => undefined };
  const mtls = { ...tlsOnly, cert: client.cert, key: client.key };

  assert.equal(await get(h.port('both'), { ...mtls, headers: { 'x-envoy-downstream-service-cluster': 'shop' } }), 200);
  let source = authz.seen[0].attributes.source;
  assert.equal(source.principal, 'spiffe://cluster.local/ns/foo/sa/client');
  assert.equal(source.service, 'shop');
  assert.equal(authz.seen[0].attributes.destination?.principal, 'spiffe://cluster.local/ns/foo/sa/server', "the proxy's own certificate");
  assert.match(source.certificate ?? '', /^-----BEGIN%20CERTIFICATE-----%0A/, 'URL-encoded PEM');
  assert.ok(new X509Certificate(decodeURIComponent(source.certificate!)).raw.equals(new X509Certificate(client.cert).raw), 'the client certificate itself');
  assert.deepEqual(authz.seen[0].attributes.tls_session, { sni: 'svc.example' });

  assert.equal(await get(h.port('both'), tlsOnly), 200);
  assert.equal(authz.seen[1].attributes.source.certificate, undefined, 'no client certificate, none sent');
  assert.deepEqual(authz.seen[1].attributes.tls_session, { sni: 'svc.example' }, 'the TLS session without a client certificate');

  assert.equal(await get(h.port('neither'), mtls), 200);
  assert.equal(authz.seen[2].attributes.source.certificate, undefined, 'not asked: not sent');
  assert.equal(authz.seen[2].attributes.tls_session, undefined);

  assert.equal(await tlsLine(h.port('tcp'), mtls), 'ping');
  source = authz.seen[3].attributes.source;
  assert.equal(authz.seen[3].attributes.request, undefined, 'a connection check');
  assert.ok(new X509Certificate(decodeURIComponent(source.certificate ?? '')).raw.equals(new X509Certificate(client.cert).raw), 'network filter: the client certificate');
  assert.deepEqual(authz.seen[3].attributes.tls_session, { sni: 'svc.example' });
  assert.equal(authz.seen[3].attributes.destination?.service, 'svc.example', 'a connection check: the SNI as destination service');

  // Without a URI SAN the principal is the first DNS SAN, without SANs the subject (RFC 2253).
  const dnsOnly = pki.leaf('dns-client', ['DNS:client.example', 'DNS:alt.example']);
  assert.equal(await get(h.port('neither'), { ...tlsOnly, ...dnsOnly }), 200);
  assert.equal(authz.seen[4].attributes.source.principal, 'client.example');
  assert.equal(authz.seen.length, 5);
  assert.equal([...h.rt.warnings.values()].flat().join('\n'), '', 'the gRPC service takes both without a warning');
});

test('include_peer_certificate with an http_service warns: its check request carries no certificate', async (t) => {
  const h = await startTestRuntime(t);
  const http = { http_service: { server_uri: { uri: 'http://authz', cluster: 'authz', timeout: '1s' } }, include_peer_certificate: true, include_tls_session: false };
  await configure(h, { clusters: [staticCluster('authz', [1]), staticCluster('app', [1])], listeners: [httpListener('h', http)] });
  const text = [...h.rt.warnings.values()].flat().join('\n');
  assert.match(text, /include_peer_certificate: an http_service check request carries no certificate/);
  assert.doesNotMatch(text, /include_tls_session/, 'false is the default: quiet');
});
