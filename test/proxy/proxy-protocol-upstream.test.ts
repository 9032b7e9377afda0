// The upstream_proxy_protocol transport socket: before any byte of the inner transport (raw or
// TLS), each upstream connection carries a PROXY header naming the downstream connection (client
// address → the address it connected to). Real servers read the header, then serve HTTP/1.1, h2c,
// TLS or raw TCP on the rest of the stream. Pools are per downstream connection, as Envoy keys
// them by the header's data: a second client gets a connection (and header) of its own.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, staticCluster, startTestRuntime, addr, CLUSTER_TYPE } from './harness.ts';
import { makePki } from './certs.ts';
import { startHeaderServer } from '../helpers/proxy-protocol-server.ts';
import { UPSTREAM_PROXY_PROTOCOL_TYPE, TCP_PROXY_TYPE } from '../../src/envoy/index.ts';

const RAW = { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } };

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

function wrapped(version: 'V1' | 'V2', inner: Record<string, unknown>) {
  return { transport_socket: { name: 'envoy.transport_sockets.upstream_proxy_protocol', typed_config: { '@type': UPSTREAM_PROXY_PROTOCOL_TYPE, config: { version }, transport_socket: inner } } };
}

function echoHandler(req: { url?: string }, res: { end(body: string): unknown }): void {
  res.end(`hello ${req.url}`);
}

/** A kept-alive client connection: sends `paths` one after another on it; returns its local port and the replies. */
async function clientConnection(port: number, paths: string[]): Promise<{ localPort: number; bodies: string[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let localPort = 0;
  const bodies: string[] = [];
  for (const path of paths) {
    bodies.push(
      await new Promise<string>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        });
        req.on('socket', (s) => s.once('connect', () => (localPort = s.localPort ?? 0)));
        req.on('error', reject);
      }),
    );
  }
  agent.destroy();
  return { localPort, bodies };
}

function v2Header(srcPort: number, dstPort: number): Buffer {
  const h = Buffer.from([...Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'), 0x21, 0x11, 0, 12, 127, 0, 0, 1, 127, 0, 0, 1, 0, 0, 0, 0]);
  h.writeUInt16BE(srcPort, 24);
  h.writeUInt16BE(dstPort, 26);
  return h;
}

test('HTTP/1.1 over a V1-wrapped raw socket: one header per downstream connection, naming it; a second client gets its own upstream connection', async (t) => {
  const httpServer = http.createServer(echoHandler);
  const up = await startHeaderServer(t, (s) => httpServer.emit('connection', s));
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('pp', [up.port], wrapped('V1', RAW))],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'pp' } }])],
    listeners: [httpListener('in', 'r')],
  });
  const port = h.port('in');
  const a = await clientConnection(port, ['/a1', '/a2']);
  assert.deepEqual(a.bodies, ['hello /a1', 'hello /a2']);
  assert.deepEqual(up.headers.map((b) => b.toString('latin1')), [`PROXY TCP4 127.0.0.1 127.0.0.1 ${a.localPort} ${port}\r\n`], 'two requests of one client: one upstream connection');
  const b = await clientConnection(port, ['/b']);
  assert.equal(up.headers.length, 2, 'another client: a pool (and header) of its own');
  assert.equal(up.headers[1].toString('latin1'), `PROXY TCP4 127.0.0.1 127.0.0.1 ${b.localPort} ${port}\r\n`);
});

test('V2 before TLS (HTTP/1.1), V2 before h2c, V1 before TLS with h2: the header, then the inner transport', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const leaf = pki.leaf('upstream', ['DNS:upstream.test']);
  const httpServer = http.createServer(echoHandler);
  const tlsUp = await startHeaderServer(t, (s) => {
    const ts = new tls.TLSSocket(s, { isServer: true, cert: leaf.cert, key: leaf.key });
    httpServer.emit('connection', ts);
  });
  const h2Server = http2.createServer(echoHandler);
  const h2Up = await startHeaderServer(t, (s) => h2Server.emit('connection', s));
  const h2TlsServer = http2.createSecureServer({ cert: leaf.cert, key: leaf.key }, echoHandler);
  const h2TlsUp = await startHeaderServer(t, (s) => h2TlsServer.emit('connection', s));
  const upstreamTls = { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni: 'upstream.test', common_tls_context: { validation_context: { trusted_ca: { inline_string: pki.ca } } } } };
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [
      staticCluster('pp-tls', [tlsUp.port], wrapped('V2', upstreamTls)),
      staticCluster('pp-h2c', [h2Up.port], { ...wrapped('V2', RAW), ...H2 }),
      staticCluster('pp-h2-tls', [h2TlsUp.port], { ...wrapped('V1', upstreamTls), ...H2 }),
    ],
    routes: [routeConfig('r', ['tls', 'h2c', 'h2-tls'].map((c) => ({ match: { path: `/${c}` }, route: { cluster: `pp-${c}` } })))],
    listeners: [httpListener('in', 'r')],
  });
  const port = h.port('in');
  const c = await clientConnection(port, ['/tls', '/h2c', '/h2-tls']);
  assert.deepEqual(c.bodies, ['hello /tls', 'hello /h2c', 'hello /h2-tls']);
  assert.deepEqual(h2TlsUp.headers.map((b) => b.toString('latin1')), [`PROXY TCP4 127.0.0.1 127.0.0.1 ${c.localPort} ${port}\r\n`]);
  assert.deepEqual(tlsUp.headers, [v2Header(c.localPort, port)]);
  assert.deepEqual(h2Up.headers, [v2Header(c.localPort, port)]);
});

test('tcp_proxy over a V1-wrapped TLS socket: the header names the TCP client, then TLS carries its bytes', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const leaf = pki.leaf('upstream', ['DNS:upstream.test']);
  const up = await startHeaderServer(t, (s) => {
    const ts = new tls.TLSSocket(s, { isServer: true, cert: leaf.cert, key: leaf.key });
    ts.on('data', (d) => ts.write(`echo ${d}`));
    ts.on('error', () => undefined);
  });
  const upstreamTls = { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni: 'upstream.test', common_tls_context: { validation_context: { trusted_ca: { inline_string: pki.ca } } } } };
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('pp', [up.port], wrapped('V1', upstreamTls))],
    listeners: [{ name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster: 'pp' } }] }] }],
  });
  const port = h.port('tcp');
  const { reply, localPort } = await new Promise<{ reply: string; localPort: number }>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('ping'));
    s.once('data', (d) => {
      resolve({ reply: d.toString(), localPort: s.localPort ?? 0 });
      s.destroy();
    });
    s.on('error', reject);
  });
  assert.equal(reply, 'echo ping');
  assert.deepEqual(up.headers.map((b) => b.toString('latin1')), [`PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${port}\r\n`]);
});

test('an upgraded (websocket) stream over a V2-wrapped raw socket: the tunnel\'s upstream connection starts with the header too', async (t) => {
  const httpServer = http.createServer();
  httpServer.on('upgrade', (_req, socket: Duplex) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
    socket.on('data', (d) => socket.write(`echo ${d}`));
  });
  const up = await startHeaderServer(t, (s) => httpServer.emit('connection', s));
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('pp', [up.port], wrapped('V2', RAW))],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'pp' } }])],
    listeners: [httpListener('in', 'r', { upgrade_configs: [{ upgrade_type: 'websocket' }] })],
  });
  const port = h.port('in');
  const { reply, localPort } = await new Promise<{ reply: string; localPort: number }>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n'));
    let out = '';
    s.on('data', (d) => {
      out += d.toString('latin1');
      if (out.includes('\r\n\r\n') && !out.includes('echo')) s.write('ping');
      if (out.endsWith('echo ping')) {
        resolve({ reply: out, localPort: s.localPort ?? 0 });
        s.destroy();
      }
    });
    s.on('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 101/);
  assert.deepEqual(up.headers, [v2Header(localPort, port)]);
});

test('TLV settings and health checks of a wrapped cluster take no warning; a missing inner transport socket is an error', async (t) => {
  const h = await startTestRuntime(t);
  const cluster = (name: string, typed_config: Record<string, unknown>) => staticCluster(name, [1], { transport_socket: { name: 'envoy.transport_sockets.upstream_proxy_protocol', typed_config } });
  const errs = h.apply(CLUSTER_TYPE, [
    cluster('tlvs', { '@type': UPSTREAM_PROXY_PROTOCOL_TYPE, config: { version: 'V2', pass_through_tlvs: { match_type: 'INCLUDE_ALL' } }, transport_socket: RAW }),
    cluster('no-inner', { '@type': UPSTREAM_PROXY_PROTOCOL_TYPE, config: { version: 'V2' } }),
    { ...cluster('checked', { '@type': UPSTREAM_PROXY_PROTOCOL_TYPE, transport_socket: RAW }), health_checks: [{ timeout: '1s', interval: '1s', tcp_health_check: {} }] },
  ]);
  assert.match(errs.join('\n'), /transport_socket\.typed_config\.transport_socket: upstream_proxy_protocol needs the transport_socket it wraps/);
  const warnings = [...h.rt.warnings.values()].flat().join('\n');
  assert.doesNotMatch(warnings, /pass_through_tlvs|health_checks/);
});
