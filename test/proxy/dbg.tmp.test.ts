import tls from 'node:tls';
import { test } from 'node:test';
import { addr, configure, routeConfig, startRuntime, startUpstream, staticCluster, SECRET_TYPE, HCM, ROUTER } from './harness.ts';
import { makePki, sdsSecrets } from './certs.ts';
test('dbg', async () => {
  const pki = makePki();
  const up = await startUpstream('app');
  const h = await startRuntime();
  h.rt.observers.push((i) => console.log('STREAM', i.responseCode, i.responseFlags, i.responseCodeDetails, i.upstreamTransportFailureReason));
  const server = pki.leaf('server', ['URI:spiffe://cluster.local/ns/default/sa/server', 'DNS:svc.mesh']);
  const client = pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']);
  h.apply(SECRET_TYPE, sdsSecrets(server, pki.ca));
  await configure(h, { clusters: [staticCluster('app', [up.port])], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }])],
    listeners: [{ name: 'in', address: addr(0), filter_chains: [{ transport_socket: { name: 't', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default' }] } } }, filters: [{ name: 'h', typed_config: { '@type': HCM, stat_prefix: 'x', rds: { route_config_name: 'r', config_source: { ads: {} } }, http_filters: [ROUTER] } }] }] }] });
  await new Promise<void>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: h.port('in'), servername: 'svc.mesh', ca: pki.ca, cert: client.cert, key: client.key }, () => { console.log('client secure'); s.write('GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n'); });
    s.on('data', (d) => console.log('DATA', String(d).slice(0, 200)));
    s.on('error', (e) => console.log('ERR', e.message));
    s.on('close', () => resolve());
  });
  h.close(); await up.close(); pki.cleanup();
});
