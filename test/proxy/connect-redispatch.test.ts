// CONNECT termination then re-dispatch, at the level of Envoy config: a CONNECT route whose
// metadata names an original destination (rigging.connect_redispatch) is answered 200 by the proxy
// and the tunnel's inside goes through the bind_to_port: false listener of that destination (its
// HTTP connection manager, routes and header rules); a CONNECT route without it, with it malformed,
// or naming a destination no listener has, tunnels to its cluster as before.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { HCM, ROUTER, SECRET_TYPE, addr, configure, httpListener, staticCluster, startTestRuntime, startUpstream, type Harness } from './harness.ts';
import { makePki, sdsDownstreamOptionalMtls, sdsSecrets, type TestPki } from './certs.ts';

const VIP = '240.240.9.9';

/** A CONNECT on a new stream of `session`: the stream once answered 200 (rejects with any other status). */
function h2Connect(session: http2.ClientHttp2Session, authority: string): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'CONNECT', ':authority': authority }, { endStream: false });
    stream.on('error', reject);
    stream.once('response', (h) => (h[':status'] === 200 ? resolve(stream) : reject(new Error(`CONNECT ${authority}: ${h[':status']}`))));
  });
}

/** Writes `inside` on a duplex and resolves with all that came back once `done` says so (then ends it) or the peer ends. */
function exchange(d: Duplex, inside: string, done: (out: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    d.on('data', (c) => {
      out += c;
      if (done(out)) {
        d.end();
        resolve(out);
      }
    });
    d.on('end', () => resolve(out));
    d.on('error', reject);
    d.write(inside);
  });
}

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

/** The proxy listener (CONNECT routes with and without the metadata) and the listeners of the original destinations. */
async function setup(t: TestContext): Promise<{ h: Harness; pki: TestPki }> {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const app = await startUpstream('app');
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const h = await startTestRuntime(t, [app, { close: () => new Promise<void>((r) => echo.close(() => r())) }]);
  const echoPort = (echo.address() as AddressInfo).port;
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('server', ['DNS:tls.mesh']), pki.ca)), []);
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
          { name: 'tls', domains: ['tls.mesh:8443'], routes: [connect('tls', { original_dst: { address: VIP, port_value: 8443 } })] },
          { name: 'tcp', domains: ['tcp.mesh:7070'], routes: [connect('tcp', { original_dst: { address: VIP, port_value: 7070 } })] },
        ],
      }, { upgrade_configs: [{ upgrade_type: 'CONNECT' }] }),
      {
        name: `${VIP}_8443`,
        address: addr(8443, VIP),
        bind_to_port: false,
        filter_chains: [{ transport_socket: sdsDownstreamOptionalMtls(), filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'captured_tls', route_config: { name: 'captured_tls', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'tls inside' } } }] }] }, http_filters: [ROUTER] } }] }],
      },
      {
        name: `${VIP}_7070`,
        address: addr(7070, VIP),
        bind_to_port: false,
        filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'captured_tcp', cluster: 'echo' } }] }],
      },
      {
        name: `${VIP}_9080`,
        address: addr(9080, VIP),
        bind_to_port: false,
        filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'captured', route_config: { name: 'captured', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' }, response_headers_to_add: [{ header: { key: 'x-via', value: 'captured-listener' } }] }] }] }, http_filters: [ROUTER] } }] }],
      },
    ],
  });
  return { h, pki };
}

test('a CONNECT route naming an original destination hands the tunnel to that listener; others tunnel as before', async (t) => {
  const { h } = await setup(t);
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

test('an HTTP/2 CONNECT is re-dispatched the same way: HTTP/1.1, h2c, TLS and TCP inside the stream', async (t) => {
  const { h, pki } = await setup(t);
  const stats = h.rt.ctx.stats;
  const session = http2.connect(`http://127.0.0.1:${h.port('proxy')}`);
  t.after(() => session.destroy());

  const h1 = await exchange(await h2Connect(session, 'svc.mesh:9080'), 'GET /inside-h2 HTTP/1.1\r\nhost: svc.mesh:9080\r\nconnection: close\r\n\r\n', (out) => out.includes('GET /inside-h2'));
  assert.match(h1, /^HTTP\/1\.1 200 /, h1);
  assert.match(h1, /x-via: captured-listener/i, 'the inside went through the listener of the destination');
  assert.equal(stats.counter(`listener.${VIP}_9080.downstream_cx_total`).value, 1);

  // h2c inside the h2 stream.
  const tunnel = await h2Connect(session, 'svc.mesh:9080');
  const inner = http2.connect('http://svc.mesh:9080', { createConnection: () => tunnel as unknown as net.Socket });
  const status = await new Promise<number>((resolve, reject) => {
    const req = inner.request({ ':path': '/inside-h2c' }, { endStream: true });
    req.on('response', (hd) => resolve(Number(hd[':status'])));
    req.on('error', reject);
    req.resume();
  });
  inner.close();
  assert.equal(status, 200);
  assert.equal(stats.counter('http.captured.downstream_rq_total').value, 2);

  // TLS inside: the destination listener's TLS chain terminates it.
  const tlsTunnel = await h2Connect(session, 'tls.mesh:8443');
  const secure = tls.connect({ socket: tlsTunnel as unknown as net.Socket, servername: 'tls.mesh', ca: pki.ca });
  assert.match(await exchange(secure, 'GET / HTTP/1.1\r\nhost: tls.mesh\r\nconnection: close\r\n\r\n', (out) => out.endsWith('tls inside')), /^HTTP\/1\.1 200 [^]*tls inside$/);

  // TCP inside: the destination listener's tcp_proxy.
  assert.equal(await exchange(await h2Connect(session, 'tcp.mesh:7070'), 'ping', (out) => out === 'ping'), 'ping');
  assert.equal(stats.counter(`listener.${VIP}_7070.downstream_cx_total`).value, 1);
  assert.equal(stats.counter('cluster.echo.upstream_cx_total').value, 1, 'only the tcp_proxy of the destination listener connected to echo');

  // Without the metadata: piped to the route's cluster as before.
  assert.equal(await exchange(await h2Connect(session, 'plain.mesh:9080'), 'pong', (out) => out === 'pong'), 'pong');
  assert.equal(stats.counter('cluster.echo.upstream_cx_total').value, 2);
  assert.equal(stats.counter(`listener.${VIP}_9080.downstream_cx_total`).value, 2);
});
