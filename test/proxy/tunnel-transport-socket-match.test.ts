// CONNECT tunnels take the transport socket of the host they reach, as every upstream connection
// does: the cluster's transport_socket_matches entry the endpoint's metadata matches (Istio's
// tlsMode: istio → mTLS), else the cluster's own. An app behind an explicit-mode sidecar whose
// client tunnels plain http:// through its HTTP proxy (Node's fetch with NODE_USE_ENV_PROXY does)
// reached a mesh service's inbound port in plaintext, outside mTLS.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { addr, configure, httpListener, startRuntime, SECRET_TYPE } from './harness.ts';
import { makePki, sdsSecrets, sdsUpstreamTls } from './certs.ts';

/** What one CONNECT through the proxy brings back: the tunnel's first bytes echoed by the upstream. */
function connectThrough(port: number, authority: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    let out = '';
    c.on('data', (d) => {
      out += d;
      const ok = /^HTTP\/1\.1 200 /.test(out);
      if (ok && out.endsWith('\r\n\r\n')) c.write('ping');
      else if (!ok && out.includes('\r\n\r\n')) {
        c.destroy();
        reject(new Error(out));
      } else if (out.endsWith('ping')) {
        c.destroy();
        resolve(out.slice(out.indexOf('\r\n\r\n') + 4));
      }
    });
    c.on('error', reject);
    c.setTimeout(5000, () => (c.destroy(), reject(new Error(`no echo through the tunnel to ${authority}: ${JSON.stringify(out)}`))));
    c.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

test('a CONNECT tunnel to an endpoint labelled tlsMode: istio goes over the matched mTLS transport socket', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const backend = pki.leaf('backend', ['DNS:backend.mesh']);
  const seen: string[] = [];
  const tlsServer = tls.createServer({ key: backend.key, cert: backend.cert, ca: pki.ca, requestCert: true }, (s) => (seen.push(`tls from ${(s.getPeerCertificate().subjectaltname ?? '').replace('URI:', '')}`), s.pipe(s)));
  const plainServer = net.createServer((s) => (seen.push('plaintext'), s.pipe(s)));
  for (const s of [tlsServer, plainServer]) {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => s.close(() => r())));
  }
  const tlsPort = (tlsServer.address() as AddressInfo).port;
  const plainPort = (plainServer.address() as AddressInfo).port;

  const h = await startRuntime();
  t.after(() => h.close());
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']), pki.ca)), []);
  const endpoint = (port: number, tlsMode: string) => ({ endpoint: { address: addr(port) }, metadata: { filter_metadata: { 'envoy.transport_socket_match': { tlsMode } } } });
  const meshCluster = (name: string, port: number, tlsMode: string) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [endpoint(port, tlsMode)] }] },
    transport_socket_matches: [
      { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, ...sdsUpstreamTls('backend.mesh', { alpn: ['istio-peer-exchange', 'istio'] }) },
      { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } } },
    ],
  });
  const connectTo = (cluster: string) => ({ match: { connect_matcher: {} }, route: { cluster, upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] } });
  await configure(h, {
    clusters: [meshCluster('mesh', tlsPort, 'istio'), meshCluster('external', plainPort, 'disabled')],
    listeners: [
      httpListener('proxy', {
        name: 'r',
        virtual_hosts: [
          { name: 'mesh', domains: ['backend.mesh:9080'], routes: [connectTo('mesh')] },
          { name: 'external', domains: ['external.example:80'], routes: [connectTo('external')] },
        ],
      }),
    ],
  });

  assert.equal(await connectThrough(h.port('proxy'), 'backend.mesh:9080'), 'ping');
  assert.deepEqual(seen, ['tls from spiffe://cluster.local/ns/default/sa/client'], 'the mesh endpoint is reached over mTLS with the workload certificate');
  assert.equal(h.rt.ctx.stats.counter('cluster.mesh.ssl.handshake').value, 1, "the tunnel's handshake is counted in the cluster's ssl.* stats");
  assert.equal(await connectThrough(h.port('proxy'), 'external.example:80'), 'ping');
  assert.deepEqual(seen, ['tls from spiffe://cluster.local/ns/default/sa/client', 'plaintext'], 'an endpoint without tlsMode: istio is reached in plaintext');
});
