// StreamInfo as telemetry reads it: the upstream peer's identity from the certificate it presented
// (HTTP pool and CONNECT tunnel), and the upstream cluster known from route resolution on, so
// replies made before the router (a fault abort) still name their cluster.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startRuntime, staticCluster, SECRET_TYPE, HCM, ROUTER } from './harness.ts';
import { makePki, sdsSecrets, sdsUpstreamTls } from './certs.ts';
import { listenLocal } from '../helpers/listen.ts';

const BACKEND_ID = 'spiffe://cluster.local/ns/prod/sa/backend';

test('upstream peer principal and subject come from the upstream certificate, for HTTP and CONNECT', async (t) => {
  const pki = makePki();
  const h = await startRuntime();
  const server = pki.leaf('backend', [`URI:${BACKEND_ID}`, 'DNS:backend.prod']);
  const backend = tls.createServer({ cert: server.cert, key: server.key }, (s) => {
    s.on('error', () => undefined);
    s.once('data', (d: Buffer) => {
      if (d.toString().startsWith('GET ')) s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      else s.end('pong');
    });
  });
  const bport = await listenLocal(backend);
  t.after(() => {
    h.close();
    backend.close();
    pki.cleanup();
  });
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']), pki.ca)), []);
  const transport = sdsUpstreamTls('backend.prod');
  const routes = routeConfig('r', [
    { match: { connect_matcher: {} }, route: { cluster: 'backend', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } },
    { match: { prefix: '/' }, route: { cluster: 'backend' } },
  ]);
  await configure(h, { clusters: [staticCluster('backend', [bport], transport)], listeners: [httpListener('out', routes)] });

  const r = await request(h.port('out'), { path: '/x' });
  assert.equal(r.status, 200);
  const info = h.streams.at(-1)!;
  assert.equal(info.upstreamCluster, 'backend');
  assert.equal(info.upstreamPeer?.principal, BACKEND_ID);
  assert.equal(info.upstreamPeer?.subject, 'CN=backend');

  // CONNECT: the tunnel's upstream connection is TLS too; its peer is recorded when it ends. It
  // resumes the session of the HTTP connection (one cache per TLS context), which carries no peer
  // certificate in Node: the peer is the one the session was made with.
  const s = net.connect(h.port('out'), '127.0.0.1');
  t.after(() => s.destroy());
  let got = '';
  await new Promise<void>((resolve, reject) => {
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\r\n\r\n') && !got.includes('ping-sent')) {
        got += 'ping-sent';
        s.write('ping');
      }
    });
    s.on('end', () => resolve());
    s.write('CONNECT backend.prod:443 HTTP/1.1\r\nhost: backend.prod:443\r\n\r\n');
  });
  assert.match(got, /^HTTP\/1\.1 200/);
  assert.match(got, /pong$/);
  for (let i = 0; i < 50 && h.streams.at(-1)!.method !== 'CONNECT'; i++) await new Promise((res) => setTimeout(res, 20));
  const tunnel = h.streams.at(-1)!;
  assert.equal(tunnel.method, 'CONNECT');
  assert.equal(tunnel.upstreamPeer?.principal, BACKEND_ID);
});

test('the upstream cluster is known from route resolution: a fault abort before the router still names it; weighted picks too', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const fault = { name: 'envoy.filters.http.fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault', abort: { http_status: 503, percentage: { numerator: 100, denominator: 'HUNDRED' } } } };
  const routes = routeConfig('r', [
    { match: { prefix: '/one' }, route: { cluster: 'reviews' } },
    { match: { prefix: '/split' }, route: { weighted_clusters: { clusters: [{ name: 'v1', weight: 1 }, { name: 'v2', weight: 1 }] } } },
  ]);
  await configure(h, {
    listeners: [{ name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'l', route_config: routes, http_filters: [fault, ROUTER] } }] }] }],
  });
  const r = await request(h.port('l'), { path: '/one' });
  assert.equal(r.status, 503);
  assert.equal(h.streams.at(-1)!.upstreamCluster, 'reviews');
  const seen = new Set<string | undefined>();
  for (let i = 0; i < 40; i++) {
    assert.equal((await request(h.port('l'), { path: '/split' })).status, 503);
    seen.add(h.streams.at(-1)!.upstreamCluster);
  }
  assert.deepEqual([...seen].sort(), ['v1', 'v2']);
  await request(h.port('l'), { path: '/none' });
  assert.equal(h.streams.at(-1)!.upstreamCluster, undefined);
});

