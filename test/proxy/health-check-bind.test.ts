// Cluster upstream_bind_config: active health check connections bind the cluster's source_address
// like its traffic does (Envoy's check connections are upstream connections of the cluster), for
// every check kind. The cluster binds 127.0.0.2, a loopback address Linux routes on lo without
// setup; each upstream records the peer address of the connections it accepts.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { HCM, ROUTER, addr, configure, request, routeConfig, startTestRuntime, staticCluster } from './harness.ts';
import { listenLocal } from '../helpers/listen.ts';
import { waitFor } from '../helpers/wait.ts';
import { grpcHealthServer } from '../helpers/grpc-health-h2.ts';

const skip = process.platform !== 'linux' ? 'Linux-only (127.0.0.2 on lo without setup)' : undefined;
const BIND = { upstream_bind_config: { source_address: { address: '127.0.0.2', port_value: 0 } } };
const KINDS = ['h1', 'h2', 'tcp', 'grpc'] as const;

/** Peer addresses of the connections each upstream accepted, by name (sockets destroyed when the test ends). */
function peerRecorder(t: TestContext): { peers: Map<string, string[]>; record: (name: string) => (s: net.Socket) => void } {
  const peers = new Map<string, string[]>();
  const sockets: net.Socket[] = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  const record = (name: string) => (s: net.Socket) => {
    sockets.push(s.on('error', () => undefined));
    peers.set(name, [...(peers.get(name) ?? []), s.remoteAddress ?? '?']);
  };
  return { peers, record };
}

test("health check connections (HTTP/1.1, HTTP/2, TCP, gRPC) bind the cluster's upstream_bind_config source_address, as its traffic does", { skip }, async (t) => {
  const { peers, record } = peerRecorder(t);
  const authorities = new Set<unknown>();
  const servers = {
    h1: http.createServer((_req, res) => res.end('ok')),
    h2: http2.createServer((_req, res) => res.end('ok')),
    tcp: net.createServer((s) => s.once('data', () => s.write('PONG'))),
    grpc: grpcHealthServer((headers) => authorities.add(headers[':authority'])),
    unbound: http.createServer((_req, res) => res.end('ok')),
  };
  const ports: Record<string, number> = {};
  for (const [name, server] of Object.entries(servers)) {
    server.on('connection', record(name));
    ports[name] = await listenLocal(server, t);
  }
  const hc = (check: Record<string, unknown>) => ({ health_checks: [{ timeout: '5s', interval: '0.5s', no_traffic_interval: '0.5s', unhealthy_threshold: 1, healthy_threshold: 1, ...check }] });
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [
      staticCluster('h1', [ports.h1], { ...BIND, ...hc({ http_health_check: { path: '/h' } }) }),
      staticCluster('h2', [ports.h2], { ...BIND, http2_protocol_options: {}, ...hc({ http_health_check: { path: '/h', codec_client_type: 'HTTP2' } }) }),
      staticCluster('tcp', [ports.tcp], { ...BIND, ...hc({ tcp_health_check: { send: { text: '50494e47' }, receive: [{ text: '504f4e47' }] } }) }),
      staticCluster('grpc', [ports.grpc], { ...BIND, ...hc({ grpc_health_check: {} }) }),
      staticCluster('unbound', [ports.unbound], hc({ http_health_check: { path: '/h' } })),
    ],
    listeners: [
      {
        name: 'http',
        address: addr(0),
        filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 'http', route_config: routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'h1' } }]), http_filters: [ROUTER] } }] }],
      },
    ],
  });
  await waitFor('a health check connection to each upstream', () => [...KINDS, 'unbound'].every((n) => peers.has(n)) || undefined);
  for (const name of KINDS) assert.deepEqual(peers.get(name), ['127.0.0.2'], `${name}: the health check connection's source address`);
  assert.deepEqual(peers.get('unbound'), ['127.0.0.1'], 'a cluster without upstream_bind_config: the kernel picks the source address');

  // The checks passed (a bound connection reaches the host), and traffic binds the same address.
  for (const n of KINDS) await waitFor(`${n} healthy`, () => h.rt.stats.gauge(`cluster.${n}.health_check.healthy`).value === 1 || undefined);
  assert.deepEqual([...authorities], ['grpc'], "the gRPC check's :authority: the cluster name, as grpc_health_check.authority is empty");
  assert.equal((await request(h.port('http'), { path: '/' })).status, 200);
  assert.deepEqual(new Set(peers.get('h1')), new Set(['127.0.0.2']), 'traffic to the cluster binds 127.0.0.2 too');
});
