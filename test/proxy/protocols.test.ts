// Protocols through the proxy: h2c downstream with multiplexing, HTTP/2 upstream, gRPC (unary,
// streaming, status in trailers), WebSocket upgrades, CONNECT tunnels and absolute-form requests
// (explicit forward-proxy mode), TCP proxy with half-close.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import WebSocket, { WebSocketServer } from 'ws';
import { addr, configure, deadPort, httpListener, request, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) };
const service: grpc.ServiceDefinition = {
  Say: { path: '/test.Echo/Say', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
  Fail: { path: '/test.Echo/Fail', requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
  Count: { path: '/test.Echo/Count', requestStream: false, responseStream: true, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize },
};

test('h2c with prior knowledge downstream, multiplexed, to an HTTP/1.1 upstream', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, { clusters: [staticCluster('up', [up.port])], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }])], listeners: [httpListener('l', 'r')] });
  const session = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  t.after(() => session.close());
  const one = (i: number) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = session.request({ ':path': `/h2/${i}`, ':method': 'POST' });
      let body = '';
      let status = 0;
      s.on('response', (hd) => (status = Number(hd[':status'])));
      s.on('data', (c) => (body += c));
      s.on('end', () => resolve({ status, body }));
      s.on('error', reject);
      s.end(`body-${i}`);
    });
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => one(i)));
  for (const [i, r] of results.entries()) {
    assert.equal(r.status, 200);
    const e = JSON.parse(r.body);
    assert.equal(e.url, `/h2/${i}`);
    assert.equal(e.body, `body-${i}`);
  }
  assert.equal(h.streams.at(-1)!.protocol, 'HTTP/2');
  const stats = new Map(h.rt.stats.all().map((s) => [s.name, s.value]));
  assert.equal(stats.get('http.l.downstream_cx_http2_total'), 1);
  assert.equal(stats.get('http.l.downstream_rq_http2_total'), 10);
});

test('gRPC through the proxy over HTTP/2 both ways: unary, server streaming, error status', async (t) => {
  const gport = await startGrpcServer(t, service, {
    Say: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const md = new grpc.Metadata();
      md.set('x-served-by', 'grpc-upstream');
      call.sendMetadata(md);
      cb(null, { message: `hello ${call.request.name}`, authority: call.getPath() });
    },
    Fail: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'quota gone' }),
    Count: (call: grpc.ServerWritableStream<{ n: number }, unknown>) => {
      for (let i = 0; i < call.request.n; i++) call.write({ i });
      call.end();
    },
  });
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('grpc', [gport], H2)],
    routes: [routeConfig('r', [{ match: { prefix: '/test.Echo/', grpc: {} }, route: { cluster: 'grpc', max_stream_duration: { grpc_timeout_header_max: '0s' } } }])],
    listeners: [httpListener('l', 'r')],
  });
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = new Client(`127.0.0.1:${h.port('l')}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  t.after(() => client.close());
  const reply = await new Promise<{ message: string }>((resolve, reject) => {
    const call = client.Say({ name: 'mesh' }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e: Error | null, v: { message: string }) => (e ? reject(e) : resolve(v))) as grpc.ClientUnaryCall;
    call.on('metadata', (md: grpc.Metadata) => assert.deepEqual(md.get('x-served-by'), ['grpc-upstream']));
  });
  assert.equal(reply.message, 'hello mesh');
  const info = h.streams.at(-1)!;
  assert.equal(info.isGrpc, true);
  assert.equal(info.grpcStatus, 0);

  const err = await new Promise<grpc.ServiceError>((resolve) => client.Fail({}, (e: grpc.ServiceError) => resolve(e)));
  assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(err.details, 'quota gone');
  assert.equal(h.streams.at(-1)!.grpcStatus, grpc.status.RESOURCE_EXHAUSTED);

  const items: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = client.Count({ n: 50 }) as grpc.ClientReadableStream<{ i: number }>;
    s.on('data', (d: { i: number }) => items.push(d.i));
    s.on('end', resolve);
    s.on('error', reject);
  });
  assert.equal(items.length, 50);

  // No route for another service: a gRPC-aware local reply (UNIMPLEMENTED for 404).
  const bad = { ...service.Say, path: '/other.Svc/Say' };
  const Other = grpc.makeGenericClientConstructor({ Say: bad }, 'Other');
  const other = new Other(`127.0.0.1:${h.port('l')}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  t.after(() => other.close());
  const nr = await new Promise<grpc.ServiceError>((resolve) => other.Say({}, (e: grpc.ServiceError) => resolve(e)));
  assert.equal(nr.code, grpc.status.UNIMPLEMENTED);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'NR');
});

test('WebSocket upgrades when enabled, 403 when not', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws, req) => ws.on('message', (m) => ws.send(`echo ${m} via ${req.url}`)));
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  });
  const wsPort = (wss.address() as AddressInfo).port;
  await configure(h, {
    clusters: [staticCluster('ws', [wsPort])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'ws' } }])],
    listeners: [httpListener('on', 'r', { upgrade_configs: [{ upgrade_type: 'websocket' }] }), httpListener('off', 'r')],
  });
  const ws = new WebSocket(`ws://127.0.0.1:${h.port('on')}/chat`);
  t.after(() => ws.terminate());
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const got = new Promise<string>((r) => ws.once('message', (m) => r(String(m))));
  ws.send('hi');
  assert.equal(await got, 'echo hi via /chat');
  ws.close();
  const refused = new WebSocket(`ws://127.0.0.1:${h.port('off')}/chat`);
  const status = await new Promise<number>((r) => refused.once('unexpected-response', (_q, res) => r(res.statusCode ?? 0)));
  assert.equal(status, 403);
});

/** CONNECT `authority` through the proxy on `port`, then `payload` once the response head came; all that came back when the proxy ends. */
function connectTunnel(port: number, authority: string, payload: string): Promise<string> {
  const p = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  p.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  return new Promise<string>((resolve) => {
    let s = '';
    let sent = false;
    p.on('data', (d) => {
      s += d;
      if (!sent && s.includes('\r\n\r\n')) {
        sent = true;
        p.end(payload);
      }
    });
    p.on('end', () => resolve(s));
  });
}

async function echoServer(t: TestContext): Promise<number> {
  const s = net.createServer({ allowHalfOpen: true }, (c) => {
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    c.on('end', () => c.end(Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.after(() => s.close());
  return (s.address() as AddressInfo).port;
}

test('tcp_proxy relays bytes with half-close; CONNECT tunnels and absolute-form requests (forward proxy)', async (t) => {
  const echo = await echoServer(t);
  const up = await startUpstream('svc');
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [staticCluster('echo', [echo]), staticCluster('svc', [up.port])],
    routes: [
      {
        name: 'http_proxy',
        virtual_hosts: [
          { name: 'echo', domains: ['echo.mesh:7777'], routes: [{ match: { connect_matcher: {} }, route: { cluster: 'echo', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } }] },
          { name: 'svc', domains: ['reviews:9080'], routes: [{ match: { prefix: '/' }, route: { cluster: 'svc' } }] },
        ],
      },
    ],
    listeners: [
      { name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'tcp', cluster: 'echo' } }] }] },
      httpListener('http_proxy', 'http_proxy'),
    ],
  });
  // TCP: write, half-close, read the echo.
  const c = net.connect({ port: h.port('tcp'), host: '127.0.0.1', allowHalfOpen: true });
  const echoed = new Promise<string>((r) => {
    let s = '';
    c.on('data', (d) => (s += d));
    c.on('end', () => r(s));
  });
  c.end('ping over tcp');
  assert.equal(await echoed, 'ping over tcp');
  while (!h.streams.some((s) => s.protocol === '')) await new Promise((r) => setTimeout(r, 5));
  const tinfo = h.streams.find((s) => s.protocol === '')!;
  assert.equal(tinfo.bytesReceived, 13);
  assert.equal(tinfo.bytesSent, 13);

  // CONNECT echo.mesh:7777 → 200, then raw bytes.
  const tunnel = await connectTunnel(h.port('http_proxy'), 'echo.mesh:7777', 'through the tunnel');
  assert.match(tunnel, /^HTTP\/1\.1 200/);
  assert.ok(tunnel.endsWith('through the tunnel'));

  // Absolute-form: GET http://reviews:9080/path HTTP/1.1
  const a = await request(h.port('http_proxy'), { path: 'http://reviews:9080/ratings?x=1' });
  assert.equal(a.status, 200);
  assert.equal(a.json().url, '/ratings?x=1');
  assert.equal(a.json().headers.host, 'reviews:9080');
  // CONNECT to an authority without a CONNECT route → 404.
  const q = net.connect({ port: h.port('http_proxy'), host: '127.0.0.1' });
  q.write('CONNECT nowhere:1 HTTP/1.1\r\nHost: nowhere:1\r\n\r\n');
  const miss = await new Promise<string>((r) => {
    let s = '';
    q.on('data', (d) => (s += d));
    q.on('close', () => r(s));
  });
  assert.match(miss, /^HTTP\/1\.1 404/);
});

test('ORIGINAL_DST passthrough: absolute-form requests and CONNECT reach the address they name; the header only with use_http_header', async (t) => {
  const echo = await echoServer(t);
  const up = await startUpstream('external');
  const other = await startUpstream('other');
  const h = await startTestRuntime(t, [up, other]);
  await configure(h, {
    clusters: [
      { name: 'PassthroughCluster', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '1s' },
      { name: 'ByHeader', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '1s', original_dst_lb_config: { use_http_header: true } },
    ],
    routes: [
      {
        name: 'http_proxy',
        virtual_hosts: [
          { name: 'hdr', domains: ['by-header'], routes: [{ match: { prefix: '/' }, route: { cluster: 'ByHeader' } }] },
          { name: 'allow_any', domains: ['*'], routes: [{ match: { connect_matcher: {} }, route: { cluster: 'PassthroughCluster', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } }, { match: { prefix: '/' }, route: { cluster: 'PassthroughCluster' } }] },
        ],
      },
    ],
    listeners: [httpListener('http_proxy', 'http_proxy')],
  });
  const port = h.port('http_proxy');
  // The header is ignored without use_http_header: the authority decides.
  const r = await request(port, { path: `http://127.0.0.1:${up.port}/ext?q=1`, headers: { 'x-envoy-original-dst-host': `127.0.0.1:${other.port}` } });
  assert.equal(r.json().server, 'external');
  assert.equal(r.json().url, '/ext?q=1');
  assert.equal(h.streams.at(-1)!.upstreamHost, `127.0.0.1:${up.port}`);
  const byHeader = await request(port, { path: '/x', headers: { host: 'by-header', 'x-envoy-original-dst-host': `127.0.0.1:${other.port}` } });
  assert.equal(byHeader.json().server, 'other');

  const tunnel = await connectTunnel(port, `127.0.0.1:${echo}`, 'raw bytes');
  assert.match(tunnel, /^HTTP\/1\.1 200/);
  assert.ok(tunnel.endsWith('raw bytes'));
});

test('grpc-timeout sets the route timeout (max_stream_duration.grpc_timeout_header_max) with a gRPC-aware timeout reply', async (t) => {
  const hung = http2.createServer(() => undefined);
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  const sessions: http2.ClientHttp2Session[] = [];
  t.after(() => {
    for (const s of sessions) s.destroy();
    h.close();
    hung.close();
  });
  await configure(h, {
    clusters: [staticCluster('hung', [(hung.address() as AddressInfo).port], H2)],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'hung', timeout: '60s', max_stream_duration: { grpc_timeout_header_max: '10s' } } }])],
    listeners: [httpListener('l', 'r')],
  });
  const session = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  sessions.push(session);
  const headers = await new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve, reject) => {
    const s = session.request({ ':path': '/svc/M', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '150m' });
    let got: Record<string, unknown> = {};
    s.on('response', (hd) => (got = { ...hd }));
    s.on('trailers', (tr) => (got = { ...got, ...tr }));
    s.on('close', () => resolve(got as never));
    s.on('error', reject);
    s.end(Buffer.from([0, 0, 0, 0, 0]));
  });
  assert.equal(headers[':status'], 200);
  assert.equal(headers['grpc-status'], '14');
  assert.equal(decodeURIComponent(String(headers['grpc-message'])), 'upstream request timeout');
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'UT');
});

test('tcp_proxy idle_timeout closes a silent connection; a refused upstream closes the downstream (UF)', async (t) => {
  const silent = net.createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(() => {
    h.close();
    silent.close();
  });
  const dead = await deadPort();
  const tcp = (name: string, cluster: string, extra: Record<string, unknown> = {}) => ({ name, address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: name, cluster, ...extra } }] }] });
  await configure(h, { clusters: [staticCluster('silent', [(silent.address() as AddressInfo).port]), staticCluster('dead', [dead])], listeners: [tcp('idle', 'silent', { idle_timeout: '0.2s' }), tcp('refused', 'dead')] });
  for (const l of ['idle', 'refused']) {
    const c = net.connect({ port: h.port(l), host: '127.0.0.1' });
    c.on('error', () => undefined);
    await new Promise((r) => c.once('close', r));
  }
  while (h.streams.filter((s) => s.protocol === '').length < 2) await new Promise((r) => setTimeout(r, 5));
  const flagsOf = (cluster: string) => formatResponseFlags(h.streams.find((s) => s.upstreamCluster === cluster)!.responseFlags);
  assert.equal(flagsOf('silent'), 'SI');
  assert.equal(flagsOf('dead'), 'UF');
});
