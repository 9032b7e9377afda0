// CONNECT termination then re-dispatch, at the level of Envoy config: a CONNECT route whose
// metadata names an original destination (rigging.connect_redispatch) is answered 200 by the proxy
// and the tunnel's inside goes through the bind_to_port: false listener of that destination (its
// HTTP connection manager, routes and header rules); a CONNECT route without it, with it malformed,
// or naming a destination no listener has, tunnels to its cluster as before.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HCM, ROUTER, addr, configure, httpListener, staticCluster, startTestRuntime, startUpstream } from './harness.ts';

const VIP = '240.240.9.9';

/** Opens a CONNECT tunnel, then writes `inside` through it; resolves with all that came back once `done` says so or the peer closes. */
function throughTunnel(port: number, authority: string, inside: string, done: (out: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(`CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n\r\n`));
    let out = '';
    let sent = false;
    c.on('data', (d) => {
      out += d;
      if (!sent && out.includes('\r\n\r\n')) {
        if (!out.startsWith('HTTP/1.1 200 ')) return c.destroy(), reject(new Error(out));
        sent = true;
        c.write(inside);
      } else if (sent && done(out)) c.destroy();
    });
    c.on('error', reject);
    c.on('close', () => resolve(out));
  });
}

test('a CONNECT route naming an original destination hands the tunnel to that listener; others tunnel as before', async (t) => {
  const app = await startUpstream('app');
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const h = await startTestRuntime(t, [app, { close: () => new Promise<void>((r) => echo.close(() => r())) }]);
  const echoPort = (echo.address() as AddressInfo).port;
  const connect = (name: string, metadata?: unknown) => ({
    name,
    match: { connect_matcher: {} },
    route: { cluster: 'echo', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] },
    ...(metadata ? { metadata: { filter_metadata: { 'rigging.connect_redispatch': metadata } } } : {}),
  });
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('echo', [echoPort])],
    listeners: [
      httpListener('proxy', {
        name: 'proxy',
        virtual_hosts: [
          { name: 'svc', domains: ['svc.mesh:9080'], routes: [connect('redispatch', { original_dst: { address: VIP, port_value: 9080 } })] },
          { name: 'plain', domains: ['plain.mesh:9080'], routes: [connect('plain')] },
          { name: 'bad', domains: ['bad.mesh:9080'], routes: [connect('bad', { original_dst: { address: 'svc.mesh', port_value: 9080 } })] },
          { name: 'gone', domains: ['gone.mesh:9090'], routes: [connect('gone', { original_dst: { address: VIP, port_value: 9090 } })] },
        ],
      }, { upgrade_configs: [{ upgrade_type: 'CONNECT' }] }),
      {
        name: `${VIP}_9080`,
        address: addr(9080, VIP),
        bind_to_port: false,
        filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'captured', route_config: { name: 'captured', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' }, response_headers_to_add: [{ header: { key: 'x-via', value: 'captured-listener' } }] }] }] }, http_filters: [ROUTER] } }] }],
      },
    ],
  });
  const proxy = h.port('proxy');
  const captured = await throughTunnel(proxy, 'svc.mesh:9080', 'GET /inside HTTP/1.1\r\nhost: svc.mesh:9080\r\nconnection: close\r\n\r\n', (out) => out.includes('GET /inside'));
  assert.match(captured, /\r\n\r\nHTTP\/1\.1 200 /, captured);
  assert.match(captured, /x-via: captured-listener/i, 'the inside went through the listener of the destination');
  const stats = h.rt.ctx.stats;
  assert.equal(stats.counter(`listener.${VIP}_9080.downstream_cx_total`).value, 1);
  assert.equal(stats.counter('http.captured.downstream_rq_total').value, 1);
  assert.equal(stats.counter('cluster.echo.upstream_cx_total').value, 0, 'the route cluster was not connected to');

  for (const authority of ['plain.mesh:9080', 'bad.mesh:9080', 'gone.mesh:9090']) {
    assert.equal(await throughTunnel(proxy, authority, 'ping', (out) => out.endsWith('ping')), 'HTTP/1.1 200 OK\r\n\r\nping', `${authority}: tunnelled to the route's cluster`);
  }
  assert.equal(stats.counter('cluster.echo.upstream_cx_total').value, 3);
  assert.equal(stats.counter(`listener.${VIP}_9080.downstream_cx_total`).value, 1);
});
