// Active health checks over the cluster's transport socket, as Envoy's: against upstreams that speak
// only mutual TLS (a node:http2 secure server requiring a client certificate of the test CA, a
// grpc-js server with SSL credentials), HTTP/1.1, HTTP/2, TCP and gRPC checks are healthy when they
// present the cluster's client certificate (inline or SDS), send its SNI and accept the server's
// SAN; a SAN mismatch or a foreign client certificate keeps the host unhealthy (in plaintext a
// connect-only TCP check would pass against the TLS port). tls_options.alpn_protocols replaces the
// context's ALPN; transport_socket_match_criteria picks the transport_socket_matches entry in place
// of the endpoint's metadata, which picks it otherwise; a PROXY-wrapped TLS socket sends the header
// before the ClientHello; SDS secrets that arrive late or rotate apply to the next check connection.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { addr, configure, SECRET_TYPE, startTestRuntime, staticCluster, type Harness } from '../proxy/harness.ts';
import { makePki, sdsSecrets, sdsUpstreamTls, type Leaf, type TestPki } from '../proxy/certs.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { startHeaderServer } from '../helpers/proxy-protocol-server.ts';
import { listenLocal } from '../helpers/listen.ts';
import { until } from '../helpers/wait.ts';
import { HEALTH_SERVICE } from '../helpers/grpc-health-h2.ts';
import { UPSTREAM_PROXY_PROTOCOL_TYPE, UPSTREAM_TLS_TYPE } from '../../src/envoy/index.ts';

const SNI = 'backend.mesh';
const BACKEND_ID = 'spiffe://cluster.local/ns/default/sa/backend';

interface Seen {
  path: string;
  httpVersion: string;
  servername: string | false | null | undefined;
  alpn: string | false | null;
}

/**
 * An HTTP/1.1 + h2 server speaking only TLS, requiring a client certificate of `pki`'s CA: 200 for
 * a request that came with SNI backend.mesh, 421 otherwise. ALPN: h2 or http/1.1 when offered,
 * else the first protocol offered (served as HTTP/1.1).
 */
function mtlsServer(pki: TestPki, backend: Leaf) {
  const seen: Seen[] = [];
  const server = http2.createSecureServer({
    key: backend.key,
    cert: backend.cert,
    ca: pki.ca,
    requestCert: true,
    rejectUnauthorized: true,
    allowHTTP1: true,
    ALPNCallback: ({ protocols }) => (protocols.includes('h2') ? 'h2' : protocols.includes('http/1.1') ? 'http/1.1' : protocols[0]),
  });
  server.prependListener('secureConnection', (s: { alpnProtocol: string | false }) => {
    if (s.alpnProtocol !== 'h2') s.alpnProtocol = false;
  });
  server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const socket = (req.httpVersion === '2.0' ? req.stream.session?.socket : req.socket) as TLSSocket;
    seen.push({ path: req.url, httpVersion: req.httpVersion, servername: socket.servername, alpn: socket.alpnProtocol });
    res.statusCode = socket.servername === SNI && socket.authorized ? 200 : 421;
    res.end();
  });
  return { server, seen };
}

function inlineTls(client: Leaf, ca: string, san: { type: string; exact: string }, alpn?: string[]) {
  return {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': UPSTREAM_TLS_TYPE,
        sni: SNI,
        common_tls_context: {
          ...(alpn ? { alpn_protocols: alpn } : {}),
          tls_certificates: [{ certificate_chain: { inline_string: client.cert }, private_key: { inline_string: client.key } }],
          validation_context: { trusted_ca: { inline_string: ca }, match_typed_subject_alt_names: [{ san_type: san.type, matcher: { exact: san.exact } }] },
        },
      },
    },
  };
}

const check = (kind: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  health_checks: [{ timeout: '1s', interval: '0.1s', no_traffic_interval: '0.1s', unhealthy_threshold: 1, healthy_threshold: 1, ...extra, ...kind }],
});
const httpCheck = (path: string, extra: Record<string, unknown> = {}) => check({ http_health_check: { path } }, extra);

const stat = (h: Harness, c: string, name: string) => (name === 'healthy' ? h.rt.stats.gauge(`cluster.${c}.health_check.healthy`).value : h.rt.stats.counter(`cluster.${c}.health_check.${name}`).value);

async function healthy(h: Harness, clusters: string[]): Promise<void> {
  for (const c of clusters) await until(`${c} healthy`, () => stat(h, c, 'healthy') === 1, 10_000);
}

/** Each cluster has failed at least 3 checks and is not healthy. */
async function failing(h: Harness, clusters: string[]): Promise<void> {
  for (const c of clusters) {
    await until(`3 checks of ${c} failed`, () => stat(h, c, 'failure') >= 3, 10_000);
    assert.equal(stat(h, c, 'healthy'), 0, `${c} is not healthy`);
    assert.equal(stat(h, c, 'success'), 0, `${c}: no check passed`);
  }
}

async function setup(t: TestContext) {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const backend = pki.leaf('backend', [`DNS:${SNI}`, `URI:${BACKEND_ID}`]);
  const client = pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']);
  const { server, seen } = mtlsServer(pki, backend);
  const port = await listenLocal(server, t);
  const h = await startTestRuntime(t);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(client, pki.ca)), []);
  return { pki, backend, client, server, seen, port, h };
}

test('HTTP/1.1, HTTP/2, TCP and gRPC checks use the cluster TLS (client certificate inline or from SDS, SNI, SAN check); a SAN mismatch or a foreign client certificate fails', async (t) => {
  const { pki, backend, client, seen, port, h } = await setup(t);
  const grpcPort = await startGrpcServer(
    t,
    HEALTH_SERVICE,
    { Check: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { status: 1 }) },
    grpc.ServerCredentials.createSsl(Buffer.from(pki.ca), [{ private_key: Buffer.from(backend.key), cert_chain: Buffer.from(backend.cert) }], true),
  );
  const foreign = makePki('Foreign CA');
  t.after(() => foreign.cleanup());
  const stranger = foreign.leaf('stranger', ['URI:spiffe://elsewhere/ns/x/sa/y']);
  const otherSan = { san: 'spiffe://cluster.local/ns/default/sa/other' };
  await configure(h, {
    clusters: [
      staticCluster('h1-inline', [port], { ...inlineTls(client, pki.ca, { type: 'DNS', exact: SNI }), ...httpCheck('/h1-inline') }),
      staticCluster('h1-sds', [port], { ...sdsUpstreamTls(SNI, { san: BACKEND_ID }), ...httpCheck('/h1-sds') }),
      // The context offers Istio's ALPN; the check offers h2 (tls_options), which the server selects.
      staticCluster('h2-alpn', [port], { ...sdsUpstreamTls(SNI, { alpn: ['istio-peer-exchange', 'istio'] }), ...check({ http_health_check: { path: '/h2', codec_client_type: 'HTTP2' } }, { tls_options: { alpn_protocols: ['h2'] } }) }),
      staticCluster('tcp', [port], { ...sdsUpstreamTls(SNI, { san: BACKEND_ID }), ...check({ tcp_health_check: {} }) }),
      staticCluster('grpc', [grpcPort], { ...sdsUpstreamTls(SNI, { san: BACKEND_ID, alpn: ['h2'] }), ...check({ grpc_health_check: {} }) }),
      staticCluster('bad-san-tcp', [port], { ...sdsUpstreamTls(SNI, otherSan), ...check({ tcp_health_check: {} }) }),
      staticCluster('bad-san-h1', [port], { ...sdsUpstreamTls(SNI, otherSan), ...httpCheck('/bad-san') }),
      staticCluster('bad-san-grpc', [grpcPort], { ...sdsUpstreamTls(SNI, { ...otherSan, alpn: ['h2'] }), ...check({ grpc_health_check: {} }) }),
      staticCluster('foreign-cert', [port], { ...inlineTls(stranger, pki.ca, { type: 'DNS', exact: SNI }), ...httpCheck('/foreign') }),
    ],
  });
  await healthy(h, ['h1-inline', 'h1-sds', 'h2-alpn', 'tcp', 'grpc']);
  const first = (path: string) => seen.find((s) => s.path === path);
  assert.deepEqual(first('/h1-inline'), { path: '/h1-inline', httpVersion: '1.1', servername: SNI, alpn: false });
  assert.deepEqual(first('/h1-sds'), { path: '/h1-sds', httpVersion: '1.1', servername: SNI, alpn: false });
  assert.deepEqual(first('/h2'), { path: '/h2', httpVersion: '2.0', servername: SNI, alpn: 'h2' });
  await failing(h, ['bad-san-tcp', 'bad-san-h1', 'bad-san-grpc', 'foreign-cert']);
  assert.equal(first('/bad-san'), undefined, 'no request after a SAN mismatch');
  assert.equal(first('/foreign'), undefined, 'the server refused the foreign certificate');
});

test('transport_socket_match_criteria picks the transport_socket_matches entry for checks, in place of the endpoint metadata that picks it otherwise', async (t) => {
  const { port, h } = await setup(t);
  const plainSeen: string[] = [];
  const plainPort = await listenLocal(
    http.createServer((req, res) => {
      plainSeen.push(req.url ?? '');
      res.end();
    }),
    t,
  );
  const matches = { transport_socket_matches: [{ name: 'mtls', match: { tlsMode: 'istio' }, transport_socket: sdsUpstreamTls(SNI, { san: BACKEND_ID }).transport_socket }] };
  const withMetadata = (name: string, p: number, tlsMode: string) => ({
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: addr(p) }, metadata: { filter_metadata: { 'envoy.transport_socket_match': { tlsMode } } } }] }] },
  });
  await configure(h, {
    clusters: [
      // The cluster's own socket is plaintext; the criteria select the mTLS entry.
      staticCluster('by-criteria', [port], { ...matches, ...httpCheck('/by-criteria', { transport_socket_match_criteria: { tlsMode: 'istio' } }) }),
      // No criteria: the endpoint's metadata selects it, as for traffic.
      staticCluster('by-metadata', [port], { ...matches, ...withMetadata('by-metadata', port, 'istio'), ...httpCheck('/by-metadata') }),
      // Criteria that match no entry: the cluster's (plaintext) socket, whatever the endpoint says.
      staticCluster('criteria-over-metadata', [plainPort], { ...matches, ...withMetadata('criteria-over-metadata', plainPort, 'istio'), ...httpCheck('/plain', { transport_socket_match_criteria: { tlsMode: 'disabled' } }) }),
      staticCluster('no-match', [port], { ...matches, ...httpCheck('/no-match') }),
    ],
  });
  await healthy(h, ['by-criteria', 'by-metadata', 'criteria-over-metadata']);
  assert.ok(plainSeen.includes('/plain'));
  await failing(h, ['no-match']);
});

test('a PROXY-wrapped TLS socket: the v2 LOCAL header, then TLS with the client certificate', async (t) => {
  const { server, seen, h } = await setup(t);
  const front = await startHeaderServer(t, (stream) => server.emit('connection', stream));
  const wrapped = {
    transport_socket: {
      name: 'envoy.transport_sockets.upstream_proxy_protocol',
      typed_config: { '@type': UPSTREAM_PROXY_PROTOCOL_TYPE, config: { version: 'V2' }, transport_socket: sdsUpstreamTls(SNI, { san: BACKEND_ID }).transport_socket },
    },
  };
  await configure(h, {
    clusters: [staticCluster('pp-tls', [front.port], { ...wrapped, ...httpCheck('/pp') }), staticCluster('pp-tls-tcp', [front.port], { ...wrapped, ...check({ tcp_health_check: {} }) })],
  });
  await healthy(h, ['pp-tls', 'pp-tls-tcp']);
  assert.deepEqual(
    seen.find((s) => s.path === '/pp'),
    { path: '/pp', httpVersion: '1.1', servername: SNI, alpn: false },
  );
  assert.equal(front.headers[0].toString('hex'), '0d0a0d0a000d0a515549540a' + '20000000', 'v2 LOCAL');
});

test('SDS: checks fail while the secrets are missing, pass once they arrive, and the next check validates with a rotated trust bundle', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const backend = pki.leaf('backend', [`DNS:${SNI}`, `URI:${BACKEND_ID}`]);
  const client = pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']);
  const port = await listenLocal(mtlsServer(pki, backend).server, t);
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('sds-tcp', [port], { ...sdsUpstreamTls(SNI, { san: BACKEND_ID }), ...check({ tcp_health_check: {} }) })] });
  await until('3 checks of sds-tcp failed', () => stat(h, 'sds-tcp', 'failure') >= 3, 10_000);
  assert.equal(stat(h, 'sds-tcp', 'healthy'), 0, 'no secrets yet: not healthy');
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(client, pki.ca)), []);
  await healthy(h, ['sds-tcp']);
  const foreign = makePki('Foreign CA');
  t.after(() => foreign.cleanup());
  // A connect-only check over TLS 1.3 is done before the server judges the client certificate (in
  // Envoy too); a trust bundle that no longer signs the server's fails the next handshake.
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(client, foreign.ca)), []);
  await until('sds-tcp unhealthy with the rotated trust bundle', () => stat(h, 'sds-tcp', 'healthy') === 0, 10_000);
});
