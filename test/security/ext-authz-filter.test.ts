// envoy.filters.http.ext_authz in rig proxy, fed Envoy config as istiod generates it for a CUSTOM
// policy (shadow RBAC + ext_authz with filter_enabled_metadata), against a real node:http
// authorization server and a real @grpc/grpc-js Authorization server.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HTTP_EXT_AUTHZ_TYPE, NETWORK_EXT_AUTHZ_TYPE, NETWORK_RBAC_TYPE, TCP_PROXY_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { ResponseFlag } from '../../src/proxy/response-flags.ts';
import { ENABLED_METADATA, grpcCluster, SHADOW_RBAC, startGrpcAuthz } from './ext-authz-servers.ts';
import { addr, configure, deadPort, HCM, request, ROUTER, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';


function listener(name: string, extAuthz: EnvoyJson, routes: EnvoyJson[] = [{ match: { prefix: '/' }, route: { cluster: 'app' } }]): EnvoyJson {
  return {
    name,
    address: addr(0),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              route_config: routeConfig('r', routes),
              http_filters: [SHADOW_RBAC, { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': HTTP_EXT_AUTHZ_TYPE, transport_api_version: 'V3', filter_enabled_metadata: ENABLED_METADATA, ...extAuthz } }, ROUTER],
            },
          },
        ],
      },
    ],
  };
}

/** An http_service as Istio generates it, plus the header our test service decides by. */
function httpAuthz(cluster: string, timeout = '600s'): EnvoyJson {
  return { http_service: httpService(cluster, timeout), allowed_headers: { patterns: [{ exact: 'x-verdict', ignore_case: true }] } };
}

function httpService(cluster: string, timeout: string): EnvoyJson {
  return {
    server_uri: { uri: 'http://ext-authz.foo.svc.cluster.local', cluster, timeout },
    path_prefix: '/check',
    authorization_request: { headers_to_add: [{ key: 'x-ext-authz-client', value: 'rig' }] },
    authorization_response: {
      allowed_upstream_headers: { patterns: [{ exact: 'x-user', ignore_case: true }] },
      allowed_client_headers: { patterns: [{ exact: 'x-deny-reason', ignore_case: true }] },
      allowed_client_headers_on_success: { patterns: [{ prefix: 'x-authz-', ignore_case: true }] },
    },
  };
}

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** The HTTP authorization server: decides by the header x-verdict (allow / deny / slow / boom). */
async function startHttpAuthz(): Promise<{ port: number; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const verdict = req.headers['x-verdict'];
      if (verdict === 'slow') return; // never answers
      if (verdict === 'boom') return void res.writeHead(500).end('authz broke');
      if (verdict === 'deny') {
        res.writeHead(401, { 'x-deny-reason': 'no ticket', 'x-internal': 'hidden', 'www-authenticate': 'Bearer realm="x"' });
        return void res.end('denied by ext authz');
      }
      res.writeHead(200, { 'x-user': 'alice', 'x-authz-trace': 'checked', 'x-other': 'not forwarded' });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const stat = (h: Harness, n: string) => h.rt.stats.all().find((s) => s.name === n)?.value;

test('HTTP ext_authz: only CUSTOM-selected paths are checked; allow forwards headers, deny answers with the service reply', async (t) => {
  const app = await startUpstream('app');
  const authz = await startHttpAuthz();
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, { clusters: [staticCluster('app', [app.port]), staticCluster('outbound|8000||ext-authz.foo.svc.cluster.local', [authz.port])], listeners: [listener('l', { ...httpAuthz('outbound|8000||ext-authz.foo.svc.cluster.local') })] });
  const port = h.port('l');

  const open = await request(port, { path: '/public', headers: { 'x-verdict': 'deny' } });
  assert.equal(open.status, 200, 'a path no CUSTOM rule selects is not checked');
  assert.equal(authz.seen.length, 0);

  const ok = await request(port, { path: '/secure/page?q=1', headers: { 'x-verdict': 'allow', authorization: 'Bearer t', 'x-not-allowed': 'secret', 'x-user': 'mallory' } });
  assert.equal(ok.status, 200);
  const check = authz.seen[0];
  assert.equal(check.method, 'GET');
  assert.equal(check.url, '/check/secure/page?q=1', 'path_prefix + original path');
  assert.equal(check.headers.host, `127.0.0.1:${port}`, 'the original Host');
  assert.equal(check.headers.authorization, 'Bearer t', 'Authorization is always sent');
  assert.equal(check.headers['x-not-allowed'], undefined, 'headers outside allowed_headers are not sent');
  assert.equal(check.headers['x-ext-authz-client'], 'rig', 'headers_to_add');
  assert.equal(check.headers['content-length'], '0');
  const up = ok.json();
  assert.equal(up.headers['x-user'], 'alice', 'allowed_upstream_headers replace the request header');
  assert.equal(up.headers['x-other'], undefined);
  assert.equal(ok.headers['x-authz-trace'], 'checked', 'allowed_client_headers_on_success reach the client');

  const denied = await request(port, { path: '/secure/x', headers: { 'x-verdict': 'deny' } });
  assert.equal(denied.status, 401);
  assert.equal(denied.body, 'denied by ext authz');
  assert.equal(denied.headers['x-deny-reason'], 'no ticket');
  assert.equal(denied.headers['www-authenticate'], 'Bearer realm="x"', 'WWW-Authenticate always passes');
  assert.equal(denied.headers['x-internal'], undefined, 'headers outside allowed_client_headers stay behind');
  assert.equal(app.requests.length, 2, 'the denied request never reached the app');
  const info = h.streams.find((s) => s.path === '/secure/x')!;
  assert.equal(info.responseCodeDetails, 'ext_authz_denied');
  assert.ok(info.responseFlags & ResponseFlag.UnauthorizedExternalService);
  assert.equal((info.filterState?.['envoy.filters.http.rbac'] as Record<string, string>).istio_ext_authz_shadow_effective_policy_id, 'istio-ext-authz-ns[foo]-policy[ext]-rule[0]');

  const boom = await request(port, { path: '/secure/y', headers: { 'x-verdict': 'boom' } });
  assert.equal(boom.status, 403, 'a 5xx from the service is an error: status_on_error (default 403)');
  assert.equal(h.streams.find((s) => s.path === '/secure/y')?.responseCodeDetails, 'ext_authz_error');
  assert.equal(stat(h, 'http.l.ext_authz.ok'), 1);
  assert.equal(stat(h, 'http.l.ext_authz.denied'), 1);
  assert.equal(stat(h, 'http.l.ext_authz.error'), 1);
  assert.equal(stat(h, 'http.l.ext_authz.disabled'), 1);
  // The checks are requests of the service's cluster, counted there as Envoy's async client does.
  const c = 'cluster.outbound|8000||ext-authz.foo.svc.cluster.local.';
  assert.deepEqual([stat(h, c + 'upstream_rq_total'), stat(h, c + 'upstream_rq_2xx'), stat(h, c + 'upstream_rq_4xx'), stat(h, c + 'upstream_rq_5xx')], [3, 1, 1, 1]);
});

test('HTTP ext_authz: timeouts fail closed or open (failure_mode_allow), a dead service answers status_on_error', async (t) => {
  const app = await startUpstream('app');
  const authz = await startHttpAuthz();
  const dead = await deadPort();
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authz.port]), staticCluster('down', [dead])],
    listeners: [
      listener('closed', { ...httpAuthz('authz', '0.3s') }),
      listener('open', { ...httpAuthz('authz', '0.3s'), failure_mode_allow: true, failure_mode_allow_header_add: true }),
      listener('down', { ...httpAuthz('down', '2s'), status_on_error: { code: 503 } }),
    ],
  });
  const closed = await request(h.port('closed'), { path: '/secure', headers: { 'x-verdict': 'slow' } });
  assert.equal(closed.status, 403);
  assert.equal(app.requests.length, 0);
  const open = await request(h.port('open'), { path: '/secure', headers: { 'x-verdict': 'slow' } });
  assert.equal(open.status, 200, 'failure_mode_allow lets the request through');
  assert.equal(open.json().headers['x-envoy-auth-failure-mode-allowed'], 'true');
  assert.equal(stat(h, 'http.open.ext_authz.failure_mode_allowed'), 1);
  const down = await request(h.port('down'), { path: '/secure/z' });
  assert.equal(down.status, 503, 'status_on_error');
  assert.equal(h.streams.find((s) => s.path === '/secure/z')?.responseCodeDetails, 'ext_authz_error');
  assert.equal(stat(h, 'http.down.ext_authz.error'), 1);
});

test('HTTP ext_authz with_request_body: the body goes to the service, cut at max_request_bytes or refused with 413', async (t) => {
  const app = await startUpstream('app');
  const authz = await startHttpAuthz();
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authz.port])],
    listeners: [
      listener('partial', { ...httpAuthz('authz'), with_request_body: { max_request_bytes: 5, allow_partial_message: true } }),
      listener('strict', { ...httpAuthz('authz'), with_request_body: { max_request_bytes: 5 } }),
    ],
  });
  const r = await request(h.port('partial'), { method: 'POST', path: '/secure', body: 'hello world', headers: { 'x-verdict': 'allow' } });
  assert.equal(r.status, 200);
  assert.equal(authz.seen[0].body, 'hello');
  assert.equal(authz.seen[0].headers['x-envoy-auth-partial-body'], 'true');
  assert.equal(r.json().body, 'hello world', 'the upstream gets the whole body');
  assert.equal((await request(h.port('strict'), { method: 'POST', path: '/secure', body: 'hello world' })).status, 413);
  assert.equal((await request(h.port('strict'), { method: 'POST', path: '/secure', body: 'hi', headers: { 'x-verdict': 'allow' } })).status, 200);
  assert.equal(authz.seen[1].body, 'hi');
  assert.equal(authz.seen[1].headers['x-envoy-auth-partial-body'], 'false');
  // Larger than the connection manager's 1 MiB buffer: only a request that is not buffered gets through.
  const big = 'x'.repeat(1_500_000);
  const unchecked = await request(h.port('strict'), { method: 'POST', path: '/public', body: big });
  assert.equal(unchecked.status, 200, 'a request no CUSTOM rule selects is neither checked nor buffered');
  assert.equal(unchecked.json().body.length, big.length);
  assert.equal(authz.seen.length, 2);
});

test('gRPC ext_authz: CheckRequest attributes, ok_response header mutations, denied_response, a failed call is an error', async (t) => {
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  const h = await startTestRuntime(t, [app]);
  t.after(() => authz.close());
  const cluster = 'outbound|9000||ext-authz-grpc.foo.svc.cluster.local';
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster(cluster, authz.port)],
    listeners: [listener('g', { grpc_service: { envoy_grpc: { cluster_name: cluster, authority: 'outbound_.9000_._.ext-authz-grpc.foo.svc.cluster.local' }, timeout: '2s' }, status_on_error: { code: 'ServiceUnavailable' } })],
  });
  const port = h.port('g');
  const ok = await request(port, { path: '/secure/a?b=c', headers: { 'x-verdict': 'allow', 'x-drop-me': '1', 'x-request-id': 'req-1' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.json().headers['x-user'], 'bob');
  assert.equal(ok.json().headers['x-drop-me'], undefined, 'headers_to_remove');
  assert.equal(ok.headers['x-authz-grpc'], 'yes', 'response_headers_to_add');
  const http1 = authz.seen[0].attributes.request!.http;
  assert.equal(http1.method, 'GET');
  assert.equal(http1.path, '/secure/a?b=c');
  assert.equal(http1.host, `127.0.0.1:${port}`);
  assert.equal(http1.headers[':path'], '/secure/a?b=c');
  assert.equal(http1.headers['x-drop-me'], '1', 'gRPC checks carry every header by default');
  assert.equal(http1.id, 'req-1');
  assert.equal(authz.seen[0].attributes.source.address.socket_address.address, '127.0.0.1');
  assert.deepEqual(h.streams[0].filterState?.['envoy.filters.http.ext_authz'], { user: 'bob' }, 'dynamic_metadata is ingested');

  const denied = await request(port, { path: '/secure/b', headers: { 'x-verdict': 'deny' } });
  assert.equal(denied.status, 401);
  assert.equal(denied.body, 'denied over gRPC');
  assert.equal(denied.headers['x-deny-reason'], 'grpc says no');

  const failed = await request(port, { path: '/secure/c', headers: { 'x-verdict': 'fail' } });
  assert.equal(failed.status, 503, 'status_on_error');
  assert.equal(h.streams.find((s) => s.path === '/secure/c')?.responseCodeDetails, 'ext_authz_error');
  assert.equal(app.requests.length, 1);
  assert.equal(stat(h, 'http.g.ext_authz.ok'), 1);
  assert.equal(stat(h, 'http.g.ext_authz.denied'), 1);
  assert.equal(stat(h, 'http.g.ext_authz.error'), 1);
});

test('ext_authz config errors name the field and keep the previous config', async (t) => {
  const h = await startTestRuntime(t);
  const bad: [EnvoyJson, RegExp][] = [
    [{}, /needs http_service or grpc_service/],
    [{ http_service: { server_uri: { uri: 'http://x', cluster: 'c' } } }, /server_uri.timeout: a timeout is required/],
    [{ http_service: { server_uri: { uri: 'http://x', cluster: 'c', timeout: '1s' }, path_prefix: 'nope' } }, /path_prefix: must begin with "\/"/],
    [{ grpc_service: { google_grpc: { target_uri: 'x', stat_prefix: 'y' } } }, /google_grpc is not supported/],
    [{ grpc_service: { envoy_grpc: { cluster_name: 'c' } }, with_request_body: { max_request_bytes: 0 } }, /max_request_bytes: must be greater than 0/],
    [{ grpc_service: { envoy_grpc: { cluster_name: 'c' } }, decoder_header_mutation_rules: { allow_expression: { regex: '(' } } }, /decoder_header_mutation_rules.allow_expression.regex: invalid regular expression/],
    [{ grpc_service: { envoy_grpc: { cluster_name: 'c' } }, decoder_header_mutation_rules: { allow_headers: true } }, /allow_headers/],
  ];
  for (const [cfg, msg] of bad) {
    const errs = h.apply('type.googleapis.com/envoy.config.listener.v3.Listener', [listener('l', cfg)]);
    assert.match(errs.join('\n'), msg);
  }
});

/** One line over TCP: the echo, or 'closed' when the proxy closed the connection. */
function tcpLine(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('ping'));
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'ping') s.end();
    });
    s.on('close', () => resolve(got || 'closed'));
    s.on('error', () => undefined);
  });
}

test('network ext_authz (Istio CUSTOM on TCP with a gRPC provider): connections the shadow rules select are checked', async (t) => {
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const authz = await startGrpcAuthz();
  const dead = await deadPort();
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    authz.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });
  const tcpListener = (name: string, cluster: string, select: EnvoyJson, extra: EnvoyJson = {}): EnvoyJson => ({
    name,
    address: addr(0),
    filter_chains: [
      {
        filters: [
          { name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC_TYPE, stat_prefix: 'tcp.', shadow_rules_stat_prefix: 'istio_ext_authz_', shadow_rules: { action: 'DENY', policies: { 'istio-ext-authz-ns[foo]-policy[tcp]-rule[0]': { permissions: [select], principals: [{ any: true }] } } } } },
          {
            name: 'envoy.filters.network.ext_authz',
            typed_config: { '@type': NETWORK_EXT_AUTHZ_TYPE, stat_prefix: 'tcp.', transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: cluster }, timeout: '2s' }, filter_enabled_metadata: { ...ENABLED_METADATA, filter: 'envoy.filters.network.rbac' }, ...extra },
          },
          { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: name, cluster: 'echo' } },
        ],
      },
    ],
  });
  await configure(h, {
    clusters: [staticCluster('echo', [(echo.address() as AddressInfo).port]), grpcCluster('authz', authz.port), staticCluster('down', [dead])],
    listeners: [
      tcpListener('checked', 'authz', { any: true }),
      tcpListener('unselected', 'authz', { destination_port: 1 }),
      tcpListener('down', 'down', { any: true }),
      tcpListener('down-open', 'down', { any: true }, { failure_mode_allow: true }),
    ],
  });
  assert.equal(await tcpLine(h.port('checked')), 'ping');
  assert.equal(authz.seen.length, 1);
  assert.equal(authz.seen[0].attributes.source.address.socket_address.address, '127.0.0.1');
  assert.equal(authz.seen[0].attributes.request, undefined, 'a connection check carries no HTTP request');
  authz.tcpVerdict = 'deny';
  assert.equal(await tcpLine(h.port('checked')), 'closed');
  assert.equal(await tcpLine(h.port('unselected')), 'ping', 'connections no CUSTOM rule selects are not checked');
  assert.equal(authz.seen.length, 2);
  assert.equal(await tcpLine(h.port('down')), 'closed', 'no authorization service: fail closed');
  assert.equal(await tcpLine(h.port('down-open')), 'ping', 'failure_mode_allow');
  assert.equal(stat(h, 'ext_authz.tcp.ok'), 1);
  assert.equal(stat(h, 'ext_authz.tcp.denied'), 1);
  assert.equal(stat(h, 'ext_authz.tcp.error'), 2);
  assert.equal(stat(h, 'ext_authz.tcp.failure_mode_allowed'), 1);
  assert.equal(stat(h, 'ext_authz.tcp.disabled'), 1);
});

test('ExtAuthzPerRoute: disabled skips the check on a route, check_settings.context_extensions reach the gRPC service', async (t) => {
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  const h = await startTestRuntime(t, [app]);
  t.after(() => authz.close());
  const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster('authz', authz.port)],
    listeners: [
      listener('p', { grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '2s' } }, [
        { match: { prefix: '/secure/open' }, route: { cluster: 'app' }, typed_per_filter_config: { 'envoy.filters.http.ext_authz': { '@type': PER_ROUTE, disabled: true } } },
        { match: { prefix: '/' }, route: { cluster: 'app' }, typed_per_filter_config: { 'envoy.filters.http.ext_authz': { '@type': PER_ROUTE, check_settings: { context_extensions: { tenant: 'blue' } } } } },
      ]),
    ],
  });
  const port = h.port('p');
  assert.equal((await request(port, { path: '/secure/open', headers: { 'x-verdict': 'deny' } })).status, 200, 'disabled on this route');
  assert.equal(authz.seen.length, 0);
  assert.equal((await request(port, { path: '/secure/x', headers: { 'x-verdict': 'deny' } })).status, 401);
  assert.deepEqual(authz.seen[0].attributes.context_extensions, { tenant: 'blue' });
});
