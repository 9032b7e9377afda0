// istio.alpn: the ALPN a TLS upstream is offered comes from the filter's override for the protocol
// the router speaks (HTTP/1.1 or h2), not from the cluster's alpn_protocols; a cluster whose
// metadata opts out (istio.alpn_override: "false") and an HCM without the filter keep theirs.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { ISTIO_ALPN_TYPE } from '../../src/envoy/index.ts';
import { addr, configure, request, routeConfig, startRuntime, staticCluster, SECRET_TYPE, HCM, ROUTER } from './harness.ts';
import { makePki, sdsSecrets, sdsUpstreamTls } from './certs.ts';

const H2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } },
};
const ALPN_FILTER = {
  name: 'istio.alpn',
  typed_config: {
    '@type': ISTIO_ALPN_TYPE,
    alpn_override: [
      { alpn_override: ['istio-http/1.0', 'istio', 'http/1.0'] },
      { upstream_protocol: 'HTTP11', alpn_override: ['istio-http/1.1', 'istio', 'http/1.1'] },
      { upstream_protocol: 'HTTP2', alpn_override: ['istio-h2', 'istio', 'h2'] },
    ],
  },
};

const SDS = (name: string) => ({ name, sds_config: { ads: {} } });

function meshTls(extra: Record<string, unknown> = {}) {
  return { ...sdsUpstreamTls('backend.mesh', { alpn: ['istio-peer-exchange', 'istio'] }), ...extra };
}

function hcm(name: string, filters: unknown[]) {
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, rds: { route_config_name: 'r', config_source: { ads: {} } }, http_filters: [...filters, ROUTER] } };
}

test('istio.alpn: the upstream TLS connection offers the override of the upstream protocol', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const backend = pki.leaf('backend', ['DNS:backend.mesh']);
  const offered: string[][] = [];
  // Answers with the HTTP version it spoke; logs the ALPN list of every handshake.
  const server = http2.createSecureServer({
    key: backend.key,
    cert: backend.cert,
    allowHTTP1: true,
    ALPNCallback: ({ protocols }) => {
      offered.push(protocols);
      return protocols.includes('h2') ? 'h2' : protocols.includes('http/1.1') ? 'http/1.1' : protocols[0];
    },
  });
  // Any protocol but h2 is served as HTTP/1.1 (as an Envoy inbound chain whose codec sniffs).
  server.prependListener('secureConnection', (s: { alpnProtocol: string | false }) => {
    if (s.alpnProtocol !== 'h2') s.alpnProtocol = false;
  });
  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => res.end(`HTTP/${req.httpVersion}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const bport = (server.address() as AddressInfo).port;

  const h = await startRuntime();
  t.after(() => h.close());
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']), pki.ca)), []);
  await configure(h, {
    clusters: [
      staticCluster('mesh', [bport], meshTls()),
      staticCluster('mesh-h2', [bport], meshTls({ typed_extension_protocol_options: H2_OPTIONS })),
      staticCluster('external', [bport], meshTls({ metadata: { filter_metadata: { istio: { alpn_override: 'false' } } } })),
    ],
    routes: [routeConfig('r', [{ match: { prefix: '/h1' }, route: { cluster: 'mesh' } }, { match: { prefix: '/h2' }, route: { cluster: 'mesh-h2' } }, { match: { prefix: '/ext' }, route: { cluster: 'external' } }])],
    listeners: [
      { name: 'with-alpn', address: addr(0), filter_chains: [{ filters: [hcm('with-alpn', [ALPN_FILTER])] }] },
      { name: 'without', address: addr(0), filter_chains: [{ filters: [hcm('without', [])] }] },
    ],
  });

  const get = async (listener: string, path: string): Promise<{ body: string; alpn: string[] }> => {
    const before = offered.length;
    const r = await request(h.port(listener), { path });
    assert.equal(r.status, 200, `${listener} ${path}: ${r.body}`);
    assert.equal(offered.length, before + 1, `${listener} ${path}: one new upstream connection`);
    return { body: r.body, alpn: offered[before] };
  };
  const h1 = await get('with-alpn', '/h1');
  assert.deepEqual(h1, { body: 'HTTP/1.1', alpn: ['istio-http/1.1', 'istio', 'http/1.1'] });
  const h2 = await get('with-alpn', '/h2');
  assert.deepEqual(h2, { body: 'HTTP/2.0', alpn: ['istio-h2', 'istio', 'h2'] });
  // Opted out by metadata, or no filter on the HCM: the cluster's own ALPN (a separate pool).
  assert.deepEqual((await get('with-alpn', '/ext')).alpn, ['istio-peer-exchange', 'istio']);
  assert.deepEqual((await get('without', '/h1')).alpn, ['istio-peer-exchange', 'istio']);
  // The pools with the override are reused: no new handshake.
  const n = offered.length;
  assert.equal((await request(h.port('with-alpn'), { path: '/h1' })).body, 'HTTP/1.1');
  assert.equal((await request(h.port('with-alpn'), { path: '/h2' })).body, 'HTTP/2.0');
  assert.equal(offered.length, n);
});

test('istio.alpn: a bad upstream_protocol is rejected (NACK) with its path; numeric enum values are read', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const bad = { ...ALPN_FILTER, typed_config: { ...ALPN_FILTER.typed_config, alpn_override: [{ upstream_protocol: 'HTTP3', alpn_override: ['x'] }] } };
  await configure(h, { clusters: [staticCluster('c', [1])], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' } }])] });
  const errs = h.apply('type.googleapis.com/envoy.config.listener.v3.Listener', [{ name: 'l', address: addr(0), filter_chains: [{ filters: [hcm('l', [bad])] }] }]);
  assert.equal(errs.length, 1, errs.join('\n'));
  assert.match(errs[0], /alpn_override\[0\]\.upstream_protocol: .*"HTTP3"/);
  const numeric = { ...ALPN_FILTER, typed_config: { ...ALPN_FILTER.typed_config, alpn_override: [{ upstream_protocol: 2, alpn_override: ['istio-h2'] }] } };
  assert.deepEqual(h.apply('type.googleapis.com/envoy.config.listener.v3.Listener', [{ name: 'l', address: addr(0), filter_chains: [{ filters: [hcm('l', [numeric])] }] }]), []);
});

test('a proxy server: istio-h2 matches the chain, no common ALPN means none negotiated, h2 found by its preface', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const h = await startRuntime();
  t.after(() => h.close());
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('workload', ['URI:spiffe://cluster.local/ns/default/sa/w', 'DNS:backend.mesh']), pki.ca)), []);
  const downstreamTls = (alpn: string[]) => ({
    name: 'envoy.transport_sockets.tls',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', common_tls_context: { alpn_protocols: alpn, tls_certificate_sds_secret_configs: [SDS('default')] } },
  });
  const direct = (body: string) => ({ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: body, route_config: routeConfig(body, [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: body } } }]), http_filters: [ROUTER] } });
  const inbound = {
    name: 'in',
    address: addr(0),
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }],
    filter_chains: [
      // http/1.1 only: an istio-h2 client shares no ALPN with this chain.
      { name: 'http', filter_chain_match: { application_protocols: ['istio-http/1.1', 'istio-h2'] }, transport_socket: downstreamTls(['http/1.1']), filters: [direct('http chain')] },
      { name: 'tcp', transport_socket: downstreamTls(['istio', 'http/1.1']), filters: [direct('tcp chain')] },
    ],
  };
  await configure(h, {
    routes: [routeConfig('r', [{ match: { prefix: '/h2' }, route: { cluster: 'mesh-h2' } }, { match: { prefix: '/h1' }, route: { cluster: 'mesh' } }])],
    listeners: [
      inbound,
      { name: 'with-alpn', address: addr(0), filter_chains: [{ filters: [hcm('with-alpn', [ALPN_FILTER])] }] },
      { name: 'without', address: addr(0), filter_chains: [{ filters: [hcm('without', [])] }] },
    ],
  });
  // The clusters to 'in' once its port is known.
  await configure(h, { clusters: [staticCluster('mesh-h2', [h.port('in')], meshTls({ typed_extension_protocol_options: H2_OPTIONS })), staticCluster('mesh', [h.port('in')], meshTls())] });
  // The protocol the 'in' listener served the latest request with (its direct responses have no cluster).
  const served = () => h.streams.filter((s) => s.upstreamCluster === undefined).at(-1)?.protocol;
  const h2 = await request(h.port('with-alpn'), { path: '/h2' });
  assert.equal(h2.body, 'http chain');
  assert.equal(served(), 'HTTP/2');
  const h1 = await request(h.port('with-alpn'), { path: '/h1' });
  assert.equal(h1.body, 'http chain');
  assert.equal(served(), 'HTTP/1.1');
  // Without the filter the same client lands on the TCP chain.
  assert.equal((await request(h.port('without'), { path: '/h1' })).body, 'tcp chain');
});
