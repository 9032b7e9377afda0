// The proxy_protocol listener filter on real sockets: a PROXY header's source becomes the
// downstream remote address (x-forwarded-for with use_remote_address, StreamInfo), its destination
// the local address, while the direct remote address stays the peer; v1 and v2, TCP4/TCP6,
// UNKNOWN/LOCAL; malformed headers and missing ones close the connection and count Envoy's stats;
// allow_requests_without_proxy_protocol; TLS after the header; HAProxy's send-proxy(-v2).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, staticCluster, startTestRuntime, startUpstream, type Echo, type Harness } from './harness.ts';
import { encodeProxyHeader } from '../../src/proxy/network/proxy-protocol-header.ts';
import { PROXY_PROTOCOL_TYPE, TLS_INSPECTOR_TYPE } from '../../src/envoy/index.ts';
import { freePort } from '../../src/local/ports.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { makeTaskCertificates } from '../helpers/istio-task-certs.ts';

const ROUTES = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'echo' } }]);

function proxyProtocolFilter(config: Record<string, unknown> = {}) {
  return { name: 'envoy.filters.listener.proxy_protocol', typed_config: { '@type': PROXY_PROTOCOL_TYPE, ...config } };
}

async function setup(t: Parameters<typeof startTestRuntime>[0]): Promise<Harness> {
  const up = await startUpstream('echo');
  const h = await startTestRuntime(t, [up]);
  const hcm = { use_remote_address: true };
  await configure(h, {
    clusters: [staticCluster('echo', [up.port])],
    routes: [ROUTES],
    listeners: [
      httpListener('pp', 'r', hcm, { listener_filters: [proxyProtocolFilter()] }),
      httpListener('pp-optional', 'r', hcm, { listener_filters: [proxyProtocolFilter({ allow_requests_without_proxy_protocol: true, stat_prefix: 'opt' })] }),
    ],
  });
  return h;
}

/** Sends raw bytes, then an HTTP/1.1 request; resolves with what came back before the close. */
function rawRequest(port: number, prefix: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (c) => (out += c.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve(out) : reject(e)));
    // No half-close: the HTTP/1.1 codec takes a client's FIN as the end of the connection.
    s.write(prefix);
    s.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  });
}

function echoOf(reply: string): Echo {
  assert.match(reply, /^HTTP\/1\.1 200/, `expected a 200, got ${JSON.stringify(reply.slice(0, 80))}`);
  // The echo's JSON, out of its chunked framing.
  return JSON.parse(reply.slice(reply.indexOf('{'), reply.lastIndexOf('}') + 1)) as Echo;
}

const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');

test('a PROXY header (v1, v2, IPv4, IPv6) names the downstream client; UNKNOWN and LOCAL keep the peer', async (t) => {
  const h = await setup(t);
  const port = h.port('pp');
  let echo = echoOf(await rawRequest(port, 'PROXY TCP4 203.0.113.7 10.1.2.3 5555 8080\r\n'));
  assert.equal(echo.headers['x-forwarded-for'], '203.0.113.7');
  const info = h.streams.at(-1)!;
  assert.equal(info.downstreamRemoteAddress, '203.0.113.7:5555');
  assert.equal(info.downstreamLocalAddress, '10.1.2.3:8080');
  assert.match(info.downstreamDirectRemoteAddress ?? '', /^127\.0\.0\.1:\d+$/, 'the direct remote address stays the peer');

  echo = echoOf(await rawRequest(port, encodeProxyHeader(2, { sourceAddress: '2001:db8::7', sourcePort: 40000, destinationAddress: '2001:db8::1', destinationPort: 443 })));
  assert.equal(echo.headers['x-forwarded-for'], '2001:db8::7');
  assert.equal(h.streams.at(-1)!.downstreamRemoteIp, '2001:db8::7');

  echo = echoOf(await rawRequest(port, encodeProxyHeader(2, { sourceAddress: '198.51.100.9', sourcePort: 1, destinationAddress: '10.0.0.1', destinationPort: 80 })));
  assert.equal(echo.headers['x-forwarded-for'], '198.51.100.9');
  echo = echoOf(await rawRequest(port, 'PROXY TCP6 2001:db8::8 2001:db8::1 1234 80\r\n'));
  assert.equal(echo.headers['x-forwarded-for'], '2001:db8::8');

  echo = echoOf(await rawRequest(port, 'PROXY UNKNOWN\r\n'));
  assert.notEqual(echo.headers['x-forwarded-for'], undefined);
  assert.equal(h.streams.at(-1)!.downstreamRemoteIp, '127.0.0.1', 'UNKNOWN: the connection keeps its own addresses');
  // v2 LOCAL (health checks of the proxy in front), with a TLV after an address block to skip.
  const local = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x11, 0, 15]), Buffer.alloc(12), Buffer.from([0xe0, 0, 0])]);
  echoOf(await rawRequest(port, local));
  assert.equal(h.streams.at(-1)!.downstreamRemoteIp, '127.0.0.1', 'LOCAL: the connection keeps its own addresses');
  assert.equal(h.rt.stats.counter('proxy_proto.versions.v1.found').value, 3);
  assert.equal(h.rt.stats.counter('proxy_proto.versions.v2.found').value, 3);
});

test('a malformed or missing PROXY header closes the connection and counts Envoy\'s stats; allow_requests_without_proxy_protocol lets plain requests in', async (t) => {
  const h = await setup(t);
  const port = h.port('pp');
  const stat = (name: string) => h.rt.stats.counter(name).value;
  assert.equal(await rawRequest(port, 'PROXY TCP4 300.1.1.1 10.0.0.1 1 2\r\n'), '', 'bad IPv4 address');
  assert.equal(await rawRequest(port, 'PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n'), '', 'IPv6 address under TCP4');
  assert.equal(await rawRequest(port, 'PROXY TCP4 1.2.3.4 10.0.0.1 1 99999\r\n'), '', 'port out of range');
  assert.equal(await rawRequest(port, `PROXY TCP4 ${'1'.repeat(120)}`), '', 'no CRLF within 107 bytes');
  assert.equal(stat('proxy_proto.versions.v1.error'), 4);
  // v2: AF_UNIX is refused, as is an address block shorter than its family's.
  assert.equal(await rawRequest(port, Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x31, 0, 216]), Buffer.alloc(216)])), '');
  assert.equal(await rawRequest(port, Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x21, 0, 12]), Buffer.alloc(12)])), '');
  assert.equal(stat('proxy_proto.versions.v2.error'), 2);
  assert.equal(await rawRequest(port, ''), '', 'no header');
  assert.equal(stat('proxy_proto.not_found_disallowed'), 1);
  assert.equal(stat('downstream_cx_proxy_proto_error'), 7);

  const optional = h.port('pp-optional');
  echoOf(await rawRequest(optional, ''));
  assert.equal(h.streams.at(-1)!.downstreamRemoteIp, '127.0.0.1');
  assert.equal(stat('proxy_proto.opt.not_found_allowed'), 1);
  assert.equal(echoOf(await rawRequest(optional, 'PROXY TCP4 192.0.2.1 10.0.0.1 7 80\r\n')).headers['x-forwarded-for'], '192.0.2.1', 'a header is still read');
  assert.equal(await rawRequest(optional, 'PROXY TCP4 nonsense\r\n'), '', 'and a malformed one still refused');
});

test('TLS after a PROXY header: the proxy_protocol filter runs before tls_inspector, which still sees SNI', async (t) => {
  const up = await startUpstream('echo');
  const h = await startTestRuntime(t, [up]);
  const dir = tempDir(t);
  const ca = makeTaskCertificates(dir, path.join(dir, 'server'), 'pp.example.com', 'pp');
  const tlsSocket = { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', common_tls_context: { tls_certificates: [{ certificate_chain: { filename: path.join(dir, 'server', 'tls.crt') }, private_key: { filename: path.join(dir, 'server', 'tls.key') } }] } } };
  const listener = httpListener('pp-tls', 'r', { use_remote_address: true }, {
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TLS_INSPECTOR_TYPE } }, proxyProtocolFilter()],
  });
  const chain = (listener.filter_chains as Record<string, unknown>[])[0];
  Object.assign(chain, { filter_chain_match: { server_names: ['pp.example.com'] }, transport_socket: tlsSocket });
  await configure(h, { clusters: [staticCluster('echo', [up.port])], routes: [ROUTES], listeners: [listener] });
  const reply = await new Promise<string>((resolve, reject) => {
    const raw = net.connect(h.port('pp-tls'), '127.0.0.1', () => {
      raw.write('PROXY TCP4 203.0.113.50 10.0.0.1 6000 443\r\n');
      const s = tls.connect({ socket: raw, servername: 'pp.example.com', ca, rejectUnauthorized: true }, () => s.write('GET / HTTP/1.1\r\nhost: pp.example.com\r\nconnection: close\r\n\r\n'));
      let out = '';
      s.on('data', (c) => (out += c.toString('latin1')));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  });
  assert.equal(echoOf(reply).headers['x-forwarded-for'], '203.0.113.50');
  assert.equal(h.streams.at(-1)!.requestedServerName, 'pp.example.com');
});

/** HAProxy (TCP mode) in front of a listener, sending a PROXY header of `version`. */
async function startHaproxy(t: { after(fn: () => unknown): void }, backendPort: number, version: 1 | 2): Promise<number> {
  const port = await freePort();
  const conf = path.join(tempDir(t), 'haproxy.cfg');
  writeFileSync(conf, `global\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\nfrontend fe\n  bind 127.0.0.1:${port}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:${backendPort} ${version === 1 ? 'send-proxy' : 'send-proxy-v2'}\n`);
  const child = spawn('haproxy', ['-db', '-f', conf], { stdio: 'ignore' });
  t.after(() => child.kill());
  const accepting = () =>
    new Promise<true | undefined>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true))).once('error', () => r(undefined));
    });
  await waitFor('haproxy listening', accepting);
  return port;
}

test('behind HAProxy send-proxy and send-proxy-v2, the upstream sees the client of HAProxy (from 127.0.0.2), not HAProxy', async (t) => {
  const h = await setup(t);
  for (const version of [1, 2] as const) {
    const front = await startHaproxy(t, h.port('pp'), version);
    const reply = await new Promise<Echo>((resolve, reject) => {
      // The client binds 127.0.0.2, so its address differs from HAProxy's own (127.0.0.1).
      const s = net.connect({ port: front, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => s.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
      let out = '';
      s.on('data', (c) => (out += c.toString('latin1')));
      s.on('end', () => resolve(echoOf(out)));
      s.on('error', reject);
    });
    assert.equal(reply.headers['x-forwarded-for'], '127.0.0.2', `send-proxy v${version}`);
    const info = h.streams.at(-1)!;
    assert.match(info.downstreamRemoteAddress ?? '', /^127\.0\.0\.2:\d+$/);
    assert.equal(info.downstreamLocalAddress, `127.0.0.1:${front}`, 'the destination HAProxy\'s client connected to');
  }
});
