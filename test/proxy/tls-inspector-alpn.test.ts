// Filter chain selection by the ALPN the tls_inspector reads from the ClientHello, as Envoy does:
// chains listing an offered protocol win over chains without application_protocols, the client's
// order decides between chains listing different offered protocols, and a TLS chain without a
// transport socket relays the client's own TLS untouched (the shape of Istio's PERMISSIVE inbound).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import tls from 'node:tls';
import { TCP_PROXY_TYPE } from '../../src/envoy/index.ts';
import { SECRET_TYPE, addr, configure, staticCluster, startTestRuntime } from './harness.ts';
import { makePki, sdsDownstreamMtls, sdsSecrets, type Leaf } from './certs.ts';

const ISTIO_ALPN = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];

function tcpProxy(cluster: string) {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: cluster, cluster } };
}

/** A server on 127.0.0.1:0 that writes `word` to each connection and ends it (over TLS when `leaf` is given). */
async function startWordServer(t: TestContext, word: string, leaf?: Leaf): Promise<number> {
  const onConnection = (s: net.Socket) => {
    s.on('error', () => s.destroy());
    s.end(word);
  };
  const server = leaf ? tls.createServer({ cert: leaf.cert, key: leaf.key }, onConnection) : net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

interface Seen {
  data: string;
  /** CN of the certificate the client was shown. */
  cn: string;
  alpn: string | false;
}

function tlsRead(port: number, opts: tls.ConnectionOptions): Promise<Seen> {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'app.example', ...opts }, () => {
      const cn = String(s.getPeerCertificate().subject?.CN ?? '');
      const alpn = s.alpnProtocol ?? false;
      s.on('end', () => resolve({ data, cn, alpn }));
    });
    s.on('data', (c: Buffer) => (data += c.toString()));
    s.on('error', reject);
  });
}

function plainRead(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = net.connect(port, '127.0.0.1', () => s.write('hello'));
    s.on('data', (c: Buffer) => (data += c.toString()));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

test('tls_inspector ALPN picks the filter chain: Istio ALPN → mTLS, client order between listed protocols, other TLS passed through, plaintext', async (t) => {
  const mesh = makePki('Mesh CA');
  const own = makePki('App CA');
  t.after(() => {
    mesh.cleanup();
    own.cleanup();
  });
  const sidecar = mesh.leaf('sidecar', ['URI:spiffe://cluster.local/ns/default/sa/server']);
  const meshClient = mesh.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']);
  const appLeaf = own.leaf('app', ['DNS:app.example']);
  const ports = {
    mesh: await startWordServer(t, 'behind mTLS'),
    first: await startWordServer(t, 'x-first app', appLeaf),
    app: await startWordServer(t, 'app with its own TLS', appLeaf),
    plain: await startWordServer(t, 'plaintext'),
  };
  const h = await startTestRuntime(t);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(sidecar, mesh.ca)), []);
  await configure(h, {
    clusters: Object.entries(ports).map(([name, port]) => staticCluster(name, [port])),
    listeners: [
      {
        name: 'inbound',
        address: addr(0),
        listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }],
        filter_chains: [
          { name: 'plain', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [tcpProxy('plain')] },
          { name: 'passthrough', filter_chain_match: { transport_protocol: 'tls' }, filters: [tcpProxy('app')] },
          { name: 'first', filter_chain_match: { transport_protocol: 'tls', application_protocols: ['x-first'] }, filters: [tcpProxy('first')] },
          { name: 'mtls', filter_chain_match: { transport_protocol: 'tls', application_protocols: ISTIO_ALPN }, transport_socket: sdsDownstreamMtls('spiffe://cluster.local/', ['istio-peer-exchange', 'h2', 'http/1.1']), filters: [tcpProxy('mesh')] },
        ],
      },
    ],
  });
  const port = h.port('inbound');
  const asMesh = { ca: mesh.ca, cert: meshClient.cert, key: meshClient.key, checkServerIdentity: () => undefined };

  // An Istio client's ALPN: the sidecar terminates mTLS (its own certificate, istio-peer-exchange negotiated).
  assert.deepEqual(await tlsRead(port, { ...asMesh, ALPNProtocols: ['istio-peer-exchange', 'istio'] }), { data: 'behind mTLS', cn: 'sidecar', alpn: 'istio-peer-exchange' });
  assert.deepEqual(await tlsRead(port, { ...asMesh, ALPNProtocols: ['istio-http/1.1', 'istio', 'http/1.1'] }), { data: 'behind mTLS', cn: 'sidecar', alpn: 'http/1.1' });
  // Two chains list an offered protocol: the client's first listed one decides, not the chain order.
  assert.deepEqual(await tlsRead(port, { ...asMesh, ALPNProtocols: ['istio', 'x-first'] }), { data: 'behind mTLS', cn: 'sidecar', alpn: false });
  assert.deepEqual(await tlsRead(port, { ca: own.ca, ALPNProtocols: ['x-first', 'istio'] }), { data: 'x-first app', cn: 'app', alpn: false });
  // Any other TLS (a browser's ALPN, or none) reaches the application's own TLS untouched.
  assert.deepEqual(await tlsRead(port, { ca: own.ca, ALPNProtocols: ['h2', 'http/1.1'] }), { data: 'app with its own TLS', cn: 'app', alpn: false });
  assert.deepEqual(await tlsRead(port, { ca: own.ca }), { data: 'app with its own TLS', cn: 'app', alpn: false });
  assert.equal(await plainRead(port), 'plaintext');
});
