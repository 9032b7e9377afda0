// Envoy's response flags the router sets for what it refuses or loses: IH (strict_check_headers),
// UR (an HTTP/2 upstream resetting the stream), tcp_proxy's DT (max_downstream_connection_duration) and DO (EDS policy.drop_overloads), each with Envoy's status, body and details, on
// real sockets; the flags are read back as %RESPONSE_FLAGS% text from the StreamInfo.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { addr, configure, ENDPOINT_TYPE, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };
const ROUTE = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);

// use_remote_address with a loopback client: an internal request, whose x-envoy-* headers are kept.
function strictRouter(headers: string[]) {
  return { ...ROUTER, typed_config: { ...ROUTER.typed_config, strict_check_headers: headers } };
}

test('IH: strict_check_headers refuses invalid x-envoy-* values with 400 before the upstream is asked', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const checked = ['x-envoy-upstream-rq-timeout-ms', 'x-envoy-upstream-rq-per-try-timeout-ms', 'x-envoy-max-retries', 'x-envoy-retry-on', 'x-envoy-retry-grpc-on'];
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [httpListener('l', ROUTE, { use_remote_address: true, http_filters: [strictRouter(checked)] })] });
  const port = h.port('l');
  for (const [name, value] of [
    ['x-envoy-upstream-rq-timeout-ms', '1s'],
    ['x-envoy-upstream-rq-per-try-timeout-ms', '-5'],
    ['x-envoy-max-retries', 'three'],
    ['x-envoy-retry-on', '5xx, reset'],
    ['x-envoy-retry-on', 'unavailable'],
    ['x-envoy-retry-grpc-on', '5xx'],
  ]) {
    const r = await request(port, { headers: { [name]: value } });
    assert.equal(r.status, 400, `${name}: ${value}`);
    assert.equal(r.body, `invalid header '${name}' with value '${value}'`);
    const info = h.streams.at(-1)!;
    assert.equal(formatResponseFlags(info.responseFlags), 'IH');
    assert.equal(info.responseCodeDetails, `request_headers_failed_strict_check{${name}}`);
  }
  assert.equal(app.requests.length, 0, 'no invalid request reached the upstream');
  const ok = await request(port, { headers: { 'x-envoy-max-retries': '2', 'x-envoy-retry-on': '5xx,reset', 'x-envoy-retry-grpc-on': 'cancelled,unavailable', 'x-envoy-upstream-rq-timeout-ms': '3000' } });
  assert.equal(ok.status, 200);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), '-');

  // Only the listed headers are checked.
  await configure(h, { listeners: [httpListener('l', ROUTE, { use_remote_address: true, http_filters: [strictRouter(['x-envoy-max-retries'])] })] });
  assert.equal((await request(h.port('l'), { headers: { 'x-envoy-retry-on': 'bogus' } })).status, 200);
  assert.equal((await request(h.port('l'), { headers: { 'x-envoy-max-retries': 'x' } })).status, 400);

  const errs = h.apply(LISTENER_TYPE, [httpListener('l', ROUTE, { use_remote_address: true, http_filters: [strictRouter(['x-envoy-ip-tags'])] })]);
  assert.match(errs.join('\n'), /strict_check_headers\[0\]: strict_check_headers cannot check "x-envoy-ip-tags"/);
});

test('UR: an HTTP/2 upstream resetting the stream is a remote reset, not a connection termination', async (t) => {
  const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;
  const up = http2.createServer();
  let refused = 0;
  up.on('stream', (s, hd) => {
    const p = hd[':path'];
    s.on('error', () => undefined);
    if (p === '/refused') {
      refused++;
      s.close(NGHTTP2_REFUSED_STREAM);
    } else if (p === '/cancel') s.close(NGHTTP2_CANCEL);
    else s.close(NGHTTP2_INTERNAL_ERROR);
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const h = await startTestRuntime(t, [{ close: () => new Promise<void>((r) => up.close(() => r())) }]);
  const port = (up.address() as AddressInfo).port;
  await configure(h, { clusters: [staticCluster('app', [port], H2)], listeners: [httpListener('l', ROUTE)] });
  const last = () => h.streams.at(-1)!;

  for (const path of ['/rst', '/cancel']) {
    const r = await request(h.port('l'), { path });
    assert.equal(r.status, 503, path);
    assert.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: remote reset');
    assert.equal(formatResponseFlags(last().responseFlags), 'UR', path);
    assert.equal(last().responseCodeDetails, 'upstream_reset_before_response_started{remote_reset}');
  }
  const r = await request(h.port('l'), { path: '/refused' });
  assert.equal(r.status, 503);
  assert.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: remote refused stream reset');
  assert.equal(formatResponseFlags(last().responseFlags), 'UR');
  assert.equal(last().responseCodeDetails, 'upstream_reset_before_response_started{remote_refused_stream_reset}');
  assert.ok(refused >= 1);

  const stat = (n: string) => h.rt.stats.all().find((s) => s.name === n)?.value;
  // A refused stream is not a remote reset in Envoy's pool stats (nothing was processed).
  assert.equal(stat('cluster.app.upstream_rq_rx_reset'), 2);
});

test('DT: tcp_proxy max_downstream_connection_duration closes a busy connection', async (t) => {
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const h = await startTestRuntime(t, [{ close: () => new Promise<void>((r) => echo.close(() => r())) }]);
  const tcp = { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'tcp', cluster: 'echo', max_downstream_connection_duration: '0.3s' };
  await configure(h, { clusters: [staticCluster('echo', [(echo.address() as AddressInfo).port])], listeners: [{ name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: tcp }] }] }] });
  const c = net.connect({ port: h.port('tcp'), host: '127.0.0.1' });
  c.on('error', () => undefined);
  let echoed = 0;
  // Traffic keeps flowing (no idle timeout could fire) until the proxy closes the connection.
  const ticker = setInterval(() => c.write('ping'), 20);
  c.on('data', (d: Buffer) => (echoed += d.length));
  await new Promise((r) => c.once('close', r));
  clearInterval(ticker);
  assert.ok(echoed > 0);
  while (h.streams.length < 1) await new Promise((r) => setTimeout(r, 5));
  assert.equal(formatResponseFlags(h.streams[0].responseFlags), 'DT');
  assert.equal(h.rt.stats.all().find((s) => s.name === 'tcp.tcp.max_downstream_connection_duration')?.value, 1);
});

test('DO: EDS policy.drop_overloads answers its share of requests 503 drop_overload', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const eds = { name: 'app', type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} } } };
  const assignment = (drops: unknown[]) => ({ cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: addr(app.port) } }] }], policy: { drop_overloads: drops } });
  await configure(h, { clusters: [eds], endpoints: [assignment([{ category: 'throttle', drop_percentage: { numerator: 100, denominator: 'HUNDRED' } }])], listeners: [httpListener('l', ROUTE)] });
  for (let i = 0; i < 3; i++) {
    const r = await request(h.port('l'));
    assert.equal(r.status, 503);
    assert.equal(r.body, 'drop_overload');
    assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'DO');
    assert.equal(h.streams.at(-1)!.responseCodeDetails, 'drop_overload');
  }
  assert.equal(app.requests.length, 0);
  const stat = (n: string) => h.rt.stats.all().find((s) => s.name === n)?.value;
  assert.equal(stat('cluster.app.upstream_rq_drop_overload'), 3);
  assert.equal(stat('cluster.app.upstream_rq_503'), 3);

  // A new assignment without drops serves again; two categories are refused as in Envoy.
  await configure(h, { endpoints: [assignment([{ category: 'throttle', drop_percentage: { numerator: 0 } }])] });
  assert.equal((await request(h.port('l'))).status, 200);
  const two = [{ category: 'a', drop_percentage: { numerator: 1 } }, { category: 'b', drop_percentage: { numerator: 1 } }];
  assert.match(h.apply(ENDPOINT_TYPE, [assignment(two)]).join('\n'), /policy.drop_overloads: only one drop_overloads category is supported/);
  assert.equal((await request(h.port('l'))).status, 200, 'the last good assignment stays');
});
