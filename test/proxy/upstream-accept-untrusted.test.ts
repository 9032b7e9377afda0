// trust_chain_verification ACCEPT_UNTRUSTED on an UpstreamTlsContext, as Envoy's
// allow_untrusted_certificate: a server chain the trust bundle does not verify counts
// cluster.<name>.ssl.fail_verify_error, SANs that match none of the matchers
// ssl.fail_verify_san, and the connection is used anyway (HTTP/1.1, HTTP/2, tcp_proxy); without it
// the same server is refused. No warning.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { addr, configure, httpListener, request, routeConfig, startTestRuntime, staticCluster, type Harness } from './harness.ts';
import { makePki } from './certs.ts';
import { waitFor } from '../helpers/wait.ts';

const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const HTTP_OPTS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTS, explicit_http_config: { http2_protocol_options: {} } } } };

/** cluster.<name>.ssl.{handshake,fail_verify_error,fail_verify_san}. */
function ssl(h: Harness, cluster: string): [number, number, number] {
  const v = (n: string) => h.rt.stats.all().find((s) => s.name === `cluster.${cluster}.ssl.${n}`)?.value ?? -1;
  return [v('handshake'), v('fail_verify_error'), v('fail_verify_san')];
}

test('UpstreamTlsContext ACCEPT_UNTRUSTED: an untrusted server chain or a SAN mismatch is counted and the connection used (HTTP/1.1, HTTP/2, TCP)', async (t) => {
  const pki = makePki();
  const other = makePki('Other CA');
  t.after(() => (pki.cleanup(), other.cleanup()));
  const leaf = pki.leaf('upstream', ['DNS:upstream.test']);
  // One TLS port serves HTTP/1.1, HTTP/2 (by ALPN) and raw TCP (no ALPN: echo).
  const h2 = http2.createSecureServer({ ...leaf, allowHTTP1: true }, (req, res) => res.end(`ok ${req.httpVersion}`));
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ ...leaf, ALPNProtocols: ['h2', 'http/1.1'] }, (s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    if (s.alpnProtocol) h2.emit('secureConnection', s);
    else s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  const port = (server.address() as AddressInfo).port;
  const upstreamTls = (ca: string, san: string, trust?: string) => ({
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': UPSTREAM_TLS,
        sni: 'upstream.test',
        common_tls_context: { validation_context: { trusted_ca: { inline_string: ca }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: san } }], ...(trust ? { trust_chain_verification: trust } : {}) } },
      },
    },
  });
  const h = await startTestRuntime(t);
  const names = ['ca', 'san', 'h2ca', 'h2san', 'trusted', 'strict'];
  const tcpListener = (name: string) => ({ name, address: addr(0), filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: name } }] }] });
  await configure(h, {
    clusters: [
      staticCluster('ca', [port], upstreamTls(other.ca, 'upstream.test', 'ACCEPT_UNTRUSTED')),
      staticCluster('san', [port], upstreamTls(pki.ca, 'other.test', 'ACCEPT_UNTRUSTED')),
      staticCluster('h2ca', [port], { ...upstreamTls(other.ca, 'upstream.test', 'ACCEPT_UNTRUSTED'), ...H2 }),
      staticCluster('h2san', [port], { ...upstreamTls(pki.ca, 'other.test', 'ACCEPT_UNTRUSTED'), ...H2 }),
      staticCluster('trusted', [port], upstreamTls(pki.ca, 'upstream.test', 'ACCEPT_UNTRUSTED')),
      staticCluster('strict', [port], upstreamTls(other.ca, 'upstream.test', 'VERIFY_TRUST_CHAIN')),
      staticCluster('tcpca', [port], upstreamTls(other.ca, 'upstream.test', 'ACCEPT_UNTRUSTED')),
      staticCluster('tcpsan', [port], upstreamTls(pki.ca, 'other.test', 'ACCEPT_UNTRUSTED')),
    ],
    listeners: [
      httpListener('l', routeConfig('r', names.map((c) => ({ match: { path: `/${c}` }, route: { cluster: c, retry_policy: { num_retries: 0 } } })))),
      tcpListener('tcpca'),
      tcpListener('tcpsan'),
    ],
  });
  assert.doesNotMatch([...h.rt.warnings.values()].flat().join('\n'), /trust_chain_verification/);

  // Two requests each: the second reuses the connection (one handshake, counted once).
  for (const [path, status, body] of [
    ['/ca', 200, 'ok 1.1'], ['/ca', 200, 'ok 1.1'],
    ['/san', 200, 'ok 1.1'], ['/san', 200, 'ok 1.1'],
    ['/h2ca', 200, 'ok 2.0'], ['/h2ca', 200, 'ok 2.0'],
    ['/h2san', 200, 'ok 2.0'], ['/h2san', 200, 'ok 2.0'],
    ['/trusted', 200, 'ok 1.1'],
    ['/strict', 503, undefined],
  ] as const) {
    const r = await request(h.port('l'), { path });
    assert.equal(r.status, status, `${path}: ${r.body}`);
    if (body) assert.equal(r.body, body, path);
  }
  const echo = async (listener: string): Promise<string> => {
    const c = net.connect(h.port(listener), '127.0.0.1');
    c.on('error', () => undefined);
    let got = '';
    c.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'hi') c.end();
    });
    c.write('hi');
    await new Promise((r) => c.once('close', r));
    return got;
  };
  assert.equal(await echo('tcpca'), 'hi');
  assert.equal(await echo('tcpsan'), 'hi');

  // [handshake, fail_verify_error, fail_verify_san]
  const expected: Record<string, [number, number, number]> = {
    ca: [1, 1, 0], san: [1, 0, 1], h2ca: [1, 1, 0], h2san: [1, 0, 1], trusted: [1, 0, 0], strict: [0, 1, 0], tcpca: [1, 1, 0], tcpsan: [1, 0, 1],
  };
  await waitFor(`ssl stats ${JSON.stringify(expected)}`, () => (Object.entries(expected).every(([c, v]) => ssl(h, c).join() === v.join()) ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 }).catch(() => undefined);
  assert.deepEqual(Object.fromEntries(Object.keys(expected).map((c) => [c, ssl(h, c)])), expected);
});
