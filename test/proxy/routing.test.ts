// Routing through a live proxy configured with apply(): virtual hosts, matchers, actions, header
// mutations, response flags for requests that find no route or cluster.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

test('virtual hosts, path/header/query matchers, rewrites, redirects, direct responses and header ops', async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const h = await startTestRuntime(t, [a, b]);
  await configure(h, {
    clusters: [staticCluster('a', [a.port]), staticCluster('b', [b.port])],
    routes: [
      {
        name: 'r',
        request_headers_to_add: [{ header: { key: 'x-config', value: 'cfg' } }],
        virtual_hosts: [
          {
            name: 'exact',
            domains: ['reviews:9080', 'reviews'],
            request_headers_to_add: [{ header: { key: 'x-vh', value: 'exact' } }],
            routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }],
          },
          { name: 'suffix', domains: ['*.example.com'], routes: [{ match: { prefix: '/' }, route: { cluster: 'b', host_rewrite_literal: 'rewritten.internal' } }] },
          { name: 'prefix', domains: ['api.*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 202, body: { inline_string: 'prefix-wildcard' } } }] },
          {
            name: 'default',
            domains: ['*'],
            response_headers_to_add: [{ header: { key: 'x-resp', value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%' } }],
            response_headers_to_remove: ['x-upstream'],
            routes: [
              { match: { path: '/exact' }, route: { cluster: 'b' } },
              { match: { prefix: '/CI', case_sensitive: false }, direct_response: { status: 200, body: { inline_string: 'case-insensitive' } } },
              { match: { safe_regex: { regex: '/items/[0-9]+' } }, route: { cluster: 'a', regex_rewrite: { pattern: { regex: '^/items/([0-9]+)$' }, substitution: '/v2/item/\\1' } } },
              { match: { path_separated_prefix: '/sep' }, direct_response: { status: 200, body: { inline_string: 'separated' } } },
              { match: { prefix: '/hdr', headers: [{ name: 'x-user', string_match: { exact: 'jason' } }] }, direct_response: { status: 200, body: { inline_string: 'jason' } } },
              { match: { prefix: '/hdr', headers: [{ name: 'x-user', present_match: true, invert_match: true }] }, direct_response: { status: 200, body: { inline_string: 'anonymous' } } },
              { match: { prefix: '/q', query_parameters: [{ name: 'v', string_match: { prefix: '2' } }] }, direct_response: { status: 200, body: { inline_string: 'query-v2' } } },
              { match: { prefix: '/old' }, redirect: { path_redirect: '/new', response_code: 'PERMANENT_REDIRECT' } },
              { match: { prefix: '/secure' }, redirect: { https_redirect: true } },
              { match: { prefix: '/api/' }, route: { cluster: 'a', prefix_rewrite: '/', timeout: '5s' }, request_headers_to_add: [{ header: { key: 'x-route', value: 'api %REQ(x-user)%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }], request_headers_to_remove: ['x-drop'] },
              { match: { prefix: '/nocluster' }, route: { cluster: 'missing' } },
            ],
          },
        ],
      },
    ],
    listeners: [httpListener('l', 'r')],
  });
  const port = h.port('l');

  let r = await request(port, { path: '/x', headers: { host: 'reviews:9080' } });
  assert.equal(r.json().server, 'b');
  assert.equal(r.json().headers['x-vh'], 'exact');
  assert.equal(r.json().headers['x-config'], 'cfg');

  r = await request(port, { path: '/x', headers: { host: 'shop.example.com' } });
  assert.equal(r.json().server, 'b');
  assert.equal(r.json().headers.host, 'rewritten.internal');

  r = await request(port, { path: '/x', headers: { host: 'api.foo' } });
  assert.equal(r.status, 202);
  assert.equal(r.body, 'prefix-wildcard');

  r = await request(port, { path: '/exact?x=1' });
  assert.equal(r.json().server, 'b');
  assert.equal(r.json().url, '/exact?x=1');
  r = await request(port, { path: '/exactly' });
  assert.equal(r.status, 404, 'exact path does not match a longer path');
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'NR');

  assert.equal((await request(port, { path: '/ci/anything' })).body, 'case-insensitive');

  r = await request(port, { path: '/items/42?a=b' });
  assert.equal(r.json().url, '/v2/item/42?a=b');
  assert.equal(r.json().headers['x-envoy-original-path'], '/items/42?a=b');
  assert.equal((await request(port, { path: '/items/abc' })).status, 404);

  assert.equal((await request(port, { path: '/sep/x' })).body, 'separated');
  assert.equal((await request(port, { path: '/sep' })).body, 'separated');
  assert.equal((await request(port, { path: '/separate' })).status, 404);

  assert.equal((await request(port, { path: '/hdr', headers: { 'x-user': 'jason' } })).body, 'jason');
  assert.equal((await request(port, { path: '/hdr' })).body, 'anonymous');
  assert.equal((await request(port, { path: '/hdr', headers: { 'x-user': 'other' } })).status, 404);

  assert.equal((await request(port, { path: '/q?v=2.1' })).body, 'query-v2');
  assert.equal((await request(port, { path: '/q?v=1' })).status, 404);

  r = await request(port, { path: '/old?k=v', headers: { host: 'h.test:8080' } });
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, 'http://h.test:8080/new?k=v');
  r = await request(port, { path: '/secure/p', headers: { host: 'h.test:8080' } });
  assert.equal(r.status, 301);
  // Envoy keeps a port that is not http's default through the scheme change (Http::Utility::newUri).
  assert.equal(r.headers.location, 'https://h.test:8080/secure/p');

  r = await request(port, { path: '/api/users?id=1', headers: { 'x-user': 'jason', 'x-drop': '1', 'x-route': 'client' } });
  assert.equal(r.status, 200);
  const echo = r.json();
  assert.equal(echo.url, '/users?id=1');
  assert.equal(echo.headers['x-route'], 'api jason');
  assert.equal(echo.headers['x-drop'], undefined);
  assert.equal(echo.headers['x-envoy-expected-rq-timeout-ms'], '5000');
  assert.ok(echo.headers['x-request-id'], 'a request id is generated');
  assert.equal(echo.headers['x-forwarded-proto'], 'http');
  assert.equal(r.headers['x-resp'], '127.0.0.1');
  assert.equal(r.headers['x-upstream'], undefined, 'response_headers_to_remove');
  assert.equal(r.headers.server, 'envoy');
  assert.ok(Number(r.headers['x-envoy-upstream-service-time']) >= 0);

  r = await request(port, { path: '/nocluster' });
  assert.equal(r.status, 503);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'NC');
  const info = h.streams.find((s) => s.path === '/api/users?id=1')!;
  assert.equal(info.responseCode, 200);
  assert.equal(info.upstreamCluster, 'a');
  assert.equal(info.upstreamHost, `127.0.0.1:${a.port}`);
  assert.equal(info.responseCodeDetails, 'via_upstream');
  assert.ok(info.durationMs! >= 0);
});

test('weighted clusters split traffic by weight', async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const h = await startTestRuntime(t, [a, b]);
  await configure(h, {
    clusters: [staticCluster('a', [a.port]), staticCluster('b', [b.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 75 }, { name: 'b', weight: 25, request_headers_to_add: [{ header: { key: 'x-canary', value: 'yes' } }] }] } } }])],
    listeners: [httpListener('l', 'r')],
  });
  const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  const counts: Record<string, number> = { a: 0, b: 0 };
  for (let i = 0; i < 400; i++) {
    const e = (await request(h.port('l'), { agent })).json();
    counts[e.server]++;
    if (e.server === 'b') assert.equal(e.headers['x-canary'], 'yes');
    else assert.equal(e.headers['x-canary'], undefined);
  }
  // 400 draws at p=0.25: mean 100, sd ≈ 8.7; ±45 is > 5 sd.
  assert.ok(counts.b > 55 && counts.b < 145, `b got ${counts.b} of 400`);
  // Keep-alive pooling: a handful of upstream connections served 400 requests.
  assert.ok(a.connections + b.connections <= 8, `upstream connections: ${a.connections + b.connections}`);
});

test('require_tls redirects plaintext to https; attempt counts go up and down when asked', async (t) => {
  const bad = await startUpstream('bad', (_q, res) => {
    res.writeHead(503);
    res.end();
    return true;
  });
  const good = await startUpstream('good');
  const h = await startTestRuntime(t, [bad, good]);
  await configure(h, {
    clusters: [staticCluster('c', [bad.port, good.port])],
    routes: [
      {
        name: 'r',
        virtual_hosts: [
          { name: 'secure', domains: ['secure.test'], require_tls: 'ALL', routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] },
          { name: 'counted', domains: ['*'], include_request_attempt_count: true, include_attempt_count_in_response: true, routes: [{ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx', num_retries: 3, retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }], retry_back_off: { base_interval: '0.001s' } } } }] },
        ],
      },
    ],
    listeners: [httpListener('l', 'r')],
  });
  const r = await request(h.port('l'), { path: '/p?q=1', headers: { host: 'secure.test' } });
  assert.equal(r.status, 301);
  assert.equal(r.headers.location, 'https://secure.test/p?q=1');
  const c = await request(h.port('l'), { path: '/x' });
  assert.equal(c.status, 200);
  const tries = Number(c.headers['x-envoy-attempt-count']);
  assert.ok(tries === 1 || tries === 2, `attempts ${tries}`);
  assert.equal(c.json().headers['x-envoy-attempt-count'], String(tries));
});

test('request mirroring: copies reach the mirror with a -shadow host; a mirror that never answers does not hold the primary', async (t) => {
  const primary = await startUpstream('primary');
  const mirrored: string[] = [];
  const shadow = await startUpstream('shadow', (req) => {
    mirrored.push(`${req.method} ${req.headers.host} ${req.url}`);
    return true; // never answers
  });
  const h = await startTestRuntime(t, [primary, shadow]);
  await configure(h, {
    clusters: [staticCluster('primary', [primary.port]), staticCluster('shadow', [shadow.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'primary', request_mirror_policies: [{ cluster: 'shadow', runtime_fraction: { default_value: { numerator: 100 } } }] } }])],
    listeners: [httpListener('l', 'r')],
  });
  const r = await request(h.port('l'), { path: '/m?x=1', headers: { host: 'reviews:9080' } });
  assert.equal(r.status, 200);
  assert.equal(r.json().server, 'primary');
  const p = await request(h.port('l'), { path: '/post', method: 'POST', body: 'payload', headers: { host: 'reviews:9080' } });
  assert.equal(p.json().body, 'payload');
  while (mirrored.length < 2) await new Promise((res) => setTimeout(res, 5));
  assert.deepEqual(mirrored, ['GET reviews-shadow:9080 /m?x=1', 'POST reviews-shadow:9080 /post']);
  assert.equal(shadow.requests[1].body, 'payload');
});
