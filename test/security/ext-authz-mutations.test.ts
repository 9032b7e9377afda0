// What an ext_authz OK answer may change in the request (decoder_header_mutation_rules,
// validate_mutations), deny_at_disable, and the per-route check_settings body options, against a
// real @grpc/grpc-js Authorization server and a real upstream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HTTP_EXT_AUTHZ_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { ResponseFlag } from '../../src/proxy/response-flags.ts';
import { addr, configure, HCM, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';
import { grpcCluster, startGrpcAuthz } from './ext-authz-servers.ts';

const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';

function listener(name: string, extAuthz: EnvoyJson, routes: EnvoyJson[] = [{ match: { prefix: '/' }, route: { cluster: 'app' } }]): EnvoyJson {
  const ext = { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': HTTP_EXT_AUTHZ_TYPE, grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '5s' }, ...extAuthz } };
  return {
    name,
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', routes), http_filters: [ext, ROUTER] } }] }],
  };
}

const header = (key: string, value: string, append?: boolean) => ({ header: { key, value }, ...(append === undefined ? {} : { append: { value: append } }) });

/** An OK answer that tries every kind of request header mutation. */
const MUTATIONS = {
  headers: [
    header('x-user', 'bob'),
    header('x-envoy-peer', 'evil'),
    header(':path', '/rewritten'),
    header(':authority', 'other.example'),
    header('x-tag', 'b', true),
    { header: { key: 'x-present', value: 'added' }, append_action: 'ADD_IF_ABSENT' },
    { header: { key: 'x-new', value: 'added' }, append_action: 'ADD_IF_ABSENT' },
    { header: { key: 'x-present2', value: 'over' }, append_action: 'OVERWRITE_IF_EXISTS' },
    { header: { key: 'x-missing', value: 'over' }, append_action: 'OVERWRITE_IF_EXISTS' },
  ],
  headers_to_remove: ['x-drop-me', 'x-keep-me', ':method', 'host'],
  query_parameters_to_set: [
    { key: 'a', value: 'set' },
    { key: 'n', value: 'new' },
  ],
  query_parameters_to_remove: ['gone'],
  response_headers_to_add: [{ header: { key: 'x-upstream', value: 'replaced' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }, header('x-authz', 'one', true), header('x-authz', 'two', true)],
};

const stat = (h: Harness, n: string) => h.rt.stats.all().find((s) => s.name === n)?.value ?? 0;

test('decoder_header_mutation_rules decide which request headers an OK answer sets, appends and removes', async (t) => {
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  const h = await startTestRuntime(t, [app]);
  t.after(() => authz.close());
  authz.okResponse = MUTATIONS;
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster('authz', authz.port)],
    listeners: [
      listener('free', {}),
      listener('ruled', { decoder_header_mutation_rules: { disallow_expression: { regex: 'x-keep-.*' } } }),
      listener('strict', { decoder_header_mutation_rules: { disallow_all: true, allow_expression: { regex: 'x-(user|tag|drop-me)' }, disallow_is_error: true } }),
      listener('lenient', { decoder_header_mutation_rules: { disallow_all: true, allow_expression: { regex: 'x-(user|tag|drop-me)' } } }),
    ],
  });
  const send = (l: string) => request(h.port(l), { path: '/orig?a=1&gone=x&a=2', headers: { 'x-verdict': 'allow', 'x-drop-me': '1', 'x-keep-me': '1', 'x-tag': 'a', 'x-present': 'orig', 'x-present2': 'orig' } });

  const free = await send('free');
  assert.equal(free.status, 200, free.body + ' ' + h.streams.at(-1)?.responseCodeDetails);
  const up = free.json();
  assert.equal(up.url, '/rewritten?a=set&n=new', 'without rules, :path may be set; then the query parameters are set and removed');
  assert.equal(up.headers.host, 'other.example', 'and :authority');
  assert.equal(up.headers['x-envoy-peer'], 'evil');
  assert.equal(up.headers['x-user'], 'bob');
  assert.equal(up.headers['x-tag'], 'a, b', 'append: true appends');
  assert.equal(up.headers['x-drop-me'], undefined);
  assert.equal(up.headers['x-keep-me'], undefined);
  assert.equal(up.method, 'GET', ':method can never be removed');
  assert.deepEqual([up.headers['x-present'], up.headers['x-new']], ['orig', 'added'], 'ADD_IF_ABSENT');
  assert.deepEqual([up.headers['x-present2'], up.headers['x-missing']], ['over', undefined], 'OVERWRITE_IF_EXISTS');
  assert.equal(free.headers['x-upstream'], 'replaced', 'response_headers_to_add with OVERWRITE_IF_EXISTS_OR_ADD');
  assert.equal(free.headers['x-authz'], 'one, two', 'append: true adds each value');

  const ruled = (await send('ruled')).json();
  assert.equal(ruled.url, '/rewritten?a=set&n=new', ':path is no routing header: allowed by default rules');
  assert.equal(ruled.headers.host, `127.0.0.1:${h.port('ruled')}`, ':authority needs allow_all_routing');
  assert.equal(ruled.headers['x-envoy-peer'], undefined, 'x-envoy-* needs allow_envoy');
  assert.equal(ruled.headers['x-user'], 'bob');
  assert.equal(ruled.headers['x-drop-me'], undefined);
  assert.equal(ruled.headers['x-keep-me'], '1', 'disallow_expression');

  const lenient = (await send('lenient')).json();
  assert.equal(lenient.url, '/orig?a=set&n=new', 'query parameters: the first a= takes the value, the second goes, gone= is removed, n= is added');
  assert.deepEqual([lenient.url.split('?')[0], lenient.headers['x-user'], lenient.headers['x-tag'], lenient.headers['x-drop-me'], lenient.headers['x-keep-me']], ['/orig', 'bob', 'a, b', undefined, '1'], 'disallow_all except allow_expression; refused mutations are ignored');

  const strict = await send('strict');
  assert.equal(strict.status, 500, 'disallow_is_error: a refused mutation fails the request');
  const info = h.streams.at(-1)!;
  assert.equal(info.responseCodeDetails, 'ext_authz_invalid');
  assert.ok(info.responseFlags & ResponseFlag.UnauthorizedExternalService);
  assert.equal(stat(h, 'http.strict.ext_authz.invalid'), 1);
  assert.equal(app.requests.length, 3, 'the failed request never reached the app');
});

test('validate_mutations fails an OK answer with an invalid header; deny_at_disable refuses unchecked requests', async (t) => {
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  const h = await startTestRuntime(t, [app]);
  t.after(() => authz.close());
  authz.okResponse = { headers: [header('x-user', 'bob\r\nx-injected: 1')] };
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster('authz', authz.port)],
    listeners: [
      listener('validated', { validate_mutations: true }),
      listener('off', { filter_enabled: { default_value: { numerator: 0 } }, deny_at_disable: { default_value: true }, status_on_error: { code: 'ServiceUnavailable' } }),
    ],
  });
  const bad = await request(h.port('validated'), { headers: { 'x-verdict': 'allow' } });
  assert.equal(bad.status, 500);
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'ext_authz_invalid');
  assert.equal(app.requests.length, 0);

  const off = await request(h.port('off'), { headers: { 'x-verdict': 'allow' } });
  assert.equal(off.status, 503, 'status_on_error');
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'ext_authz_error');
  assert.ok(h.streams.at(-1)!.responseFlags & ResponseFlag.UnauthorizedExternalService);
  assert.equal(stat(h, 'http.off.ext_authz.disabled'), 1);
  assert.equal(authz.seen.length, 1, 'the disabled filter made no check');
});

test('per-route check_settings: disable_request_body_buffering, or its own with_request_body', async (t) => {
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  const h = await startTestRuntime(t, [app]);
  t.after(() => authz.close());
  const settings = (cs: EnvoyJson) => ({ 'envoy.filters.http.ext_authz': { '@type': PER_ROUTE, check_settings: cs } });
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster('authz', authz.port)],
    listeners: [
      listener('p', { with_request_body: { max_request_bytes: 64 } }, [
        { match: { prefix: '/nobody' }, route: { cluster: 'app' }, typed_per_filter_config: settings({ disable_request_body_buffering: true }) },
        { match: { prefix: '/partial' }, route: { cluster: 'app' }, typed_per_filter_config: settings({ with_request_body: { max_request_bytes: 3, allow_partial_message: true } }) },
        { match: { prefix: '/' }, route: { cluster: 'app' } },
      ]),
    ],
  });
  const post = (path: string, body: string) => request(h.port('p'), { method: 'POST', path, body, headers: { 'x-verdict': 'allow' } });
  assert.equal((await post('/nobody', 'hello')).status, 200);
  assert.equal(authz.seen[0].attributes.request!.http.body, undefined, 'no body in the check');
  assert.equal(authz.seen[0].attributes.request!.http.headers['x-envoy-auth-partial-body'], undefined);
  const partial = await post('/partial', 'hello');
  assert.equal(partial.json().body, 'hello');
  assert.equal(authz.seen[1].attributes.request!.http.body, 'hel', "the route's max_request_bytes");
  assert.equal(authz.seen[1].attributes.request!.http.headers['x-envoy-auth-partial-body'], 'true');
  assert.equal((await post('/other', 'hello')).status, 200);
  assert.equal(authz.seen[2].attributes.request!.http.body, 'hello');

  const errs = h.apply('type.googleapis.com/envoy.config.listener.v3.Listener', [
    listener('p', {}, [{ match: { prefix: '/' }, route: { cluster: 'app' }, typed_per_filter_config: settings({ disable_request_body_buffering: true, with_request_body: { max_request_bytes: 3 } }) }]),
  ]);
  assert.match(errs.join('\n'), /only one of disable_request_body_buffering and with_request_body/);
});

test('the route cluster counts the outcomes (and a denial as its response unless charge_cluster_response_stats: false); encode_raw_headers; no route, no check', async (t) => {
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  const h = await startTestRuntime(t, [app]);
  t.after(() => authz.close());
  const only = (cluster: string) => [{ match: { prefix: '/r' }, route: { cluster } }];
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('quiet', [app.port]), grpcCluster('authz', authz.port)],
    listeners: [listener('charged', { encode_raw_headers: true }, only('app')), listener('uncharged', { charge_cluster_response_stats: false, stat_prefix: 'waf' }, only('quiet'))],
  });
  const send = (l: string, verdict: string, path = '/r') => request(h.port(l), { path, headers: { 'x-verdict': verdict, 'set-cookie': ['a=1', 'b=2'] } });
  assert.equal((await send('charged', 'allow')).status, 200);
  assert.equal((await send('charged', 'deny')).status, 401);
  assert.equal((await send('charged', 'fail')).status, 403);
  assert.deepEqual(['ok', 'denied', 'error'].map((o) => stat(h, `cluster.app.ext_authz.${o}`)), [1, 1, 1]);
  assert.equal(stat(h, 'cluster.app.upstream_rq_401'), 1, 'the denial is charged to the route cluster');
  assert.equal(stat(h, 'cluster.app.upstream_rq_4xx'), 1, 'the error is not');

  const raw = authz.seen[0].attributes.request!.http;
  assert.equal(raw.headers, undefined, 'encode_raw_headers: header_map instead of headers');
  assert.deepEqual(
    raw.header_map!.headers.filter((x) => x.key === 'set-cookie').map((x) => x.raw_value.toString()),
    ['a=1', 'b=2'],
    'repeated headers (kept as a list by the codec: set-cookie) stay apart',
  );
  assert.equal(raw.header_map!.headers[0].key, ':authority');

  assert.equal((await send('uncharged', 'deny')).status, 401);
  assert.equal(stat(h, 'cluster.quiet.ext_authz.waf.denied'), 1, 'the stat_prefix is in the cluster counters too');
  assert.equal(stat(h, 'cluster.quiet.upstream_rq_401'), 0, 'charge_cluster_response_stats: false');
  assert.equal(authz.seen[3].attributes.request!.http.headers['set-cookie'], 'a=1,b=2', 'joined without encode_raw_headers');

  assert.equal((await send('charged', 'deny', '/elsewhere')).status, 404);
  assert.equal(authz.seen.length, 4, 'a request no route matches is not checked');
});
