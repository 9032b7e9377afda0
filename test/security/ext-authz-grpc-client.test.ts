// ext_authz's gRPC check as Envoy's envoy_grpc client makes it: through the service's cluster (its
// protocol, pool and transport socket), and an OK status counts only with a CheckResponse. Real
// servers: node:http2 answering OK without a message, a @grpc/grpc-js server behind mutual TLS.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { test } from 'node:test';
import { HTTP_EXT_AUTHZ_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { ResponseFlag } from '../../src/proxy/response-flags.ts';
import { makePki, sdsSecrets, sdsUpstreamTls } from '../proxy/certs.ts';
import { addr, configure, HCM, request, ROUTER, routeConfig, SECRET_TYPE, startTestRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';
import { until } from '../helpers/wait.ts';
import { grpcCluster, startGrpcAuthz } from './ext-authz-servers.ts';

function listener(name: string, extAuthz: EnvoyJson): EnvoyJson {
  const ext = { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': HTTP_EXT_AUTHZ_TYPE, transport_api_version: 'V3', ...extAuthz } };
  return {
    name,
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), http_filters: [ext, ROUTER] } }] }],
  };
}

const grpcService = (cluster: string) => ({ grpc_service: { envoy_grpc: { cluster_name: cluster }, timeout: '5s' } });
const stat = (h: Harness, n: string) => h.rt.stats.all().find((s) => s.name === n)?.value;

/** An h2c server that answers every call with grpc-status 0 and no message (trailers-only, or headers + trailers). */
async function startEmptyOk(): Promise<{ port: number; calls: http2.IncomingHttpHeaders[]; close(): Promise<void> }> {
  const calls: http2.IncomingHttpHeaders[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    calls.push(headers);
    stream.resume();
    stream.on('end', () => {
      if (calls.length % 2) return stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { endStream: true });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, calls, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('gRPC ext_authz: OK without a CheckResponse is an error (status_on_error, or failure_mode_allow); grpc-timeout and :authority sent', async (t) => {
  const app = await startUpstream('app');
  const authz = await startEmptyOk();
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster('authz', authz.port)],
    listeners: [listener('closed', { ...grpcService('authz'), status_on_error: { code: 503 } }), listener('open', { ...grpcService('authz'), failure_mode_allow: true, failure_mode_allow_header_add: true })],
  });
  for (const path of ['/trailers-only', '/with-trailers']) {
    const closed = await request(h.port('closed'), { path });
    assert.equal(closed.status, 503, `${path}: an OK status without a message is not an allow`);
    const info = h.streams.find((s) => s.path === path);
    assert.equal(info?.responseCodeDetails, 'ext_authz_error');
    assert.ok((info?.responseFlags ?? 0) & ResponseFlag.UnauthorizedExternalService, 'UAEX');
  }
  assert.equal(app.requests.length, 0);
  const open = await request(h.port('open'), { path: '/open' });
  assert.equal(open.status, 200, 'failure_mode_allow lets it through');
  assert.equal(open.json().headers['x-envoy-auth-failure-mode-allowed'], 'true');
  assert.equal(stat(h, 'http.closed.ext_authz.error'), 2);
  assert.equal(stat(h, 'http.closed.ext_authz.ok'), 0);
  assert.equal(stat(h, 'http.open.ext_authz.failure_mode_allowed'), 1);
  assert.equal(authz.calls.length, 3);
  assert.equal(authz.calls[0][':path'], '/envoy.service.auth.v3.Authorization/Check');
  assert.equal(authz.calls[0][':authority'], 'authz', "envoy_grpc's default :authority is the cluster name");
  assert.equal(authz.calls[0]['grpc-timeout'], '5000m');
  assert.equal(authz.calls[0]['content-type'], 'application/grpc');
});

test("gRPC ext_authz goes through the cluster's mutual TLS and connection pool; a cluster without HTTP/2 is an error", async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const server = pki.leaf('authz', ['DNS:ext-authz.foo.svc.cluster.local']);
  const authz = await startGrpcAuthz({ ca: pki.ca, ...server });
  t.after(() => authz.close());
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('client', ['URI:spiffe://cluster.local/ns/foo/sa/client']), pki.ca)), []);
  const tls = sdsUpstreamTls('ext-authz.foo.svc.cluster.local');
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('mtls', [authz.port], { http2_protocol_options: {}, ...tls }), staticCluster('h1', [authz.port], tls)],
    listeners: [listener('mtls', { ...grpcService('mtls'), status_on_error: { code: 503 } }), listener('h1', { ...grpcService('h1'), status_on_error: { code: 503 } })],
  });
  for (const path of ['/a', '/b']) {
    const ok = await request(h.port('mtls'), { path, headers: { 'x-verdict': 'allow' } });
    assert.equal(ok.status, 200, 'the server requires a client certificate: only the cluster’s transport socket has one');
    assert.equal(ok.json().headers['x-user'], 'bob');
  }
  assert.equal(authz.seen.length, 2);
  assert.equal(stat(h, 'cluster.mtls.upstream_rq_total'), 2);
  assert.equal(stat(h, 'cluster.mtls.upstream_cx_total'), 1, "both checks on one connection of the cluster's pool");
  const h1 = await request(h.port('h1'), { path: '/c', headers: { 'x-verdict': 'allow' } });
  assert.equal(h1.status, 503, 'gRPC is not sent over HTTP/1.1');
  assert.equal(authz.seen.length, 2);
  assert.equal(stat(h, 'http.h1.ext_authz.error'), 1);
});

test('gRPC ext_authz: initial_metadata raw_value bytes, max_receive_message_length, skip_envoy_headers, a warning for retry_policy', async (t) => {
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  t.after(() => authz.close());
  const h = await startTestRuntime(t, [app]);
  const bin = Buffer.from([0x00, 0xff, 0x10, 0x80]);
  const metadata = [
    { key: 'x-tenant', raw_value: Buffer.from('blue').toString('base64') },
    { key: 'x-token-bin', raw_value: bin.toString('base64') },
    { key: 'x-plain', value: 'v' },
    { key: 'x-forwarded-for', value: '10.9.9.9' },
  ];
  const service = (max: number) => ({ grpc_service: { envoy_grpc: { cluster_name: 'authz', max_receive_message_length: max }, timeout: '5s', initial_metadata: metadata }, status_on_error: { code: 503 } });
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster('authz', authz.port)],
    listeners: [listener('roomy', service(4096)), listener('tight', { ...service(16), grpc_service: { ...service(16).grpc_service, envoy_grpc: { cluster_name: 'authz', max_receive_message_length: 16, skip_envoy_headers: true }, retry_policy: { num_retries: 2 } } })],
  });
  const ok = await request(h.port('roomy'), { path: '/a', headers: { 'x-verdict': 'allow' } });
  assert.equal(ok.status, 200);
  assert.equal(authz.metadata[0]['x-tenant'], 'blue', 'raw_value bytes as the value');
  assert.deepEqual(authz.metadata[0]['x-token-bin'], bin, 'a -bin raw_value arrives as the same bytes');
  assert.equal(authz.metadata[0]['x-plain'], 'v');
  // Envoy's envoy_grpc client marks its calls internal and appends its own address (the first
  // non-loopback IPv4 of the machine, else 127.0.0.1) to x-forwarded-for.
  const own = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((a) => a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1';
  assert.equal(authz.metadata[0]['x-envoy-internal'], 'true');
  assert.equal(authz.metadata[0]['x-forwarded-for'], `10.9.9.9,${own}`);
  const tight = await request(h.port('tight'), { path: '/b', headers: { 'x-verdict': 'allow' } });
  assert.equal(tight.status, 503, 'a CheckResponse over max_receive_message_length fails the call');
  assert.equal(authz.seen.length, 2, 'the service answered; its answer was too long');
  assert.equal(authz.metadata[1]['x-envoy-internal'], undefined, 'skip_envoy_headers');
  assert.equal(authz.metadata[1]['x-forwarded-for'], '10.9.9.9', 'skip_envoy_headers: the metadata only');
  assert.equal(stat(h, 'http.tight.ext_authz.error'), 1);
  const warnings = [...h.rt.warnings.values()].flat();
  assert.ok(warnings.some((w) => /grpc_service\.retry_policy: the authorization call is not retried/.test(w)), warnings.join('\n'));
  assert.equal(warnings.filter((w) => /ext_authz/.test(w) && !/retry_policy/.test(w)).length, 0, warnings.join('\n'));
});

test('gRPC ext_authz: a client gone while its check is pending cancels the call (the 60 s check stream is closed)', async (t) => {
  const app = await startUpstream('app');
  const closed: boolean[] = [];
  let started = 0;
  const server = http2.createServer();
  server.on('stream', (stream) => {
    started++;
    stream.on('close', () => closed.push(true));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const authz = { close: () => new Promise<void>((r) => server.close(() => r())) };
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster('authz', (server.address() as AddressInfo).port)],
    listeners: [listener('l', { grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '60s' } })],
  });
  const req = http.get({ host: '127.0.0.1', port: h.port('l'), path: '/pending' });
  req.on('error', () => undefined);
  await until('the check reached the service', () => started === 1);
  req.destroy();
  await until('the check was cancelled', () => closed.length === 1, 10_000);
  assert.equal(app.requests.length, 0);
});
