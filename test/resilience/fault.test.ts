// envoy.filters.http.fault through the real proxy: percentages within binomial tolerance, delays
// that hold the request, gRPC aborts, header-controlled faults, request matching and
// max_active_faults, in the per-route shape the control plane generates (Istio's).
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster, ROUTER, LISTENER_TYPE, type Harness } from '../proxy/harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
/** As src/xds/translate/http-filters.ts emits it: an empty filter config, the fault per route. */
const FAULT_FILTER = { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT } };

function pct(p: number): { numerator: number; denominator: string } {
  return { numerator: Math.round(p * 10000), denominator: 'MILLION' };
}

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

async function setup(t: { after(fn: () => unknown): void }, routes: object[], filterConfig: object = {}): Promise<{ h: Harness; port: number; up: Awaited<ReturnType<typeof startUpstream>> }> {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [staticCluster('up', [up.port]), staticCluster('other', [up.port])],
    routes: [routeConfig('r', routes as never)],
    listeners: [httpListener('l', 'r', { http_filters: [{ ...FAULT_FILTER, typed_config: { '@type': FAULT, ...filterConfig } }, ROUTER] })],
  });
  return { h, port: h.port('l'), up };
}

test('an abort at 30% hits 30% of 1000 requests within binomial tolerance, with flag FI and stats', async (t) => {
  const fault = { '@type': FAULT, abort: { percentage: pct(30), http_status: 503 } };
  const { h, port, up } = await setup(t, [{ match: { prefix: '/' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': fault } }]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  t.after(() => agent.destroy());
  const n = 1000;
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        next++;
        statuses.push((await request(port, { agent })).status);
      }
    }),
  );
  const aborted = statuses.filter((s) => s === 503).length;
  assert.equal(aborted + statuses.filter((s) => s === 200).length, n, 'only 200s and injected 503s');
  // mean 300, sd sqrt(1000 * 0.3 * 0.7) ≈ 14.5: ±5 sd.
  assert.ok(aborted >= 228 && aborted <= 372, `aborted ${aborted} of ${n}`);
  assert.equal(up.requests.length, n - aborted, 'aborted requests never reach the upstream');
  assert.equal(stat(h, 'http.l.fault.aborts_injected'), aborted);
  const fi = h.streams.filter((s) => formatResponseFlags(s.responseFlags) === 'FI');
  assert.equal(fi.length, aborted);
  assert.equal(fi[0].responseCodeDetails, 'fault_filter_abort');
  assert.equal(stat(h, 'http.l.fault.active_faults'), 0, 'every fault ended');
});

test('a fixed delay holds the request (DI) until it elapses; a destroyed stream clears it', async (t) => {
  const routes = [
    { match: { prefix: '/short' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, delay: { fixed_delay: '0.05s', percentage: pct(100) } } } },
    { match: { prefix: '/long' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, delay: { fixed_delay: '60s', percentage: pct(100) } } } },
  ];
  const { h, port, up } = await setup(t, routes);
  const r = await request(port, { path: '/short' });
  assert.equal(r.status, 200);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'DI');
  assert.equal(stat(h, 'http.l.fault.delays_injected'), 1);

  const req = http.request({ host: '127.0.0.1', port, path: '/long', agent: false });
  req.on('error', () => undefined);
  req.end();
  while (stat(h, 'http.l.fault.active_faults') !== 1) await new Promise((res) => setTimeout(res, 10));
  assert.equal(up.requests.filter((q) => q.url === '/long').length, 0, 'held while the delay runs');
  req.destroy();
  while (stat(h, 'http.l.fault.active_faults') !== 0) await new Promise((res) => setTimeout(res, 10));
  assert.equal(up.requests.filter((q) => q.url === '/long').length, 0, 'a reset stream is never forwarded');
  assert.match(formatResponseFlags(h.streams.at(-1)!.responseFlags), /DI/);
});

test('a gRPC abort answers HTTP 200 with grpc-status; an HTTP abort on gRPC maps the status', async (t) => {
  const routes = [
    { match: { prefix: '/grpc.Svc/' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, abort: { percentage: pct(100), grpc_status: 14 } } } },
    { match: { prefix: '/' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, abort: { percentage: pct(100), http_status: 403 } } } },
  ];
  const { h } = await setup(t, routes);
  const port = h.port('l');
  let r = await request(port, { path: '/grpc.Svc/Call', method: 'POST', headers: { 'content-type': 'application/grpc' }, body: '' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['grpc-status'], '14');
  assert.equal(h.streams.at(-1)!.grpcStatus, 14);
  r = await request(port, { path: '/x', method: 'POST', headers: { 'content-type': 'application/grpc' }, body: '' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['grpc-status'], '7', '403 → PERMISSION_DENIED');
  r = await request(port, { path: '/x' });
  assert.equal(r.status, 403);
  assert.equal(r.body, 'fault filter abort');
});

test('header-controlled faults apply only with header_abort/header_delay, capped by the configured percentage', async (t) => {
  const headerFault = { '@type': FAULT, abort: { header_abort: {}, percentage: pct(100) }, delay: { header_delay: {}, percentage: pct(100) } };
  const routes = [
    { match: { prefix: '/hdr' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': headerFault } },
    { match: { prefix: '/fixed' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, abort: { http_status: 500, percentage: pct(0) } } } },
  ];
  const { h, port } = await setup(t, routes);
  assert.equal((await request(port, { path: '/hdr' })).status, 200, 'no header, no fault');
  assert.equal((await request(port, { path: '/hdr', headers: { 'x-envoy-fault-abort-request': '418' } })).status, 418);
  assert.equal((await request(port, { path: '/hdr', headers: { 'x-envoy-fault-abort-request': '700' } })).status, 200, 'out of range status ignored');
  let r = await request(port, { path: '/hdr', headers: { 'x-envoy-fault-abort-grpc-request': '5' } });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'fault filter abort');
  r = await request(port, { path: '/hdr', headers: { 'x-envoy-fault-abort-request': '418', 'x-envoy-fault-abort-grpc-request': '5', 'content-type': 'application/grpc' }, method: 'POST', body: '' });
  assert.equal(r.headers['grpc-status'], '2', 'x-envoy-fault-abort-request wins; 418 maps to UNKNOWN');
  for (let i = 0; i < 20; i++) assert.equal((await request(port, { path: '/hdr', headers: { 'x-envoy-fault-abort-request': '418', 'x-envoy-fault-abort-request-percentage': '0' } })).status, 200);
  r = await request(port, { path: '/hdr', headers: { 'x-envoy-fault-delay-request': '20' } });
  assert.equal(r.status, 200);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'DI');
  // Without header_abort in the config the headers do nothing.
  assert.equal((await request(port, { path: '/fixed', headers: { 'x-envoy-fault-abort-request': '418' } })).status, 200);
});

test('faults match upstream_cluster, headers and downstream_nodes; max_active_faults caps them', async (t) => {
  const filterConfig = {
    abort: { http_status: 429, percentage: pct(100) },
    upstream_cluster: 'up',
    headers: [{ name: 'x-chaos', exact_match: 'on' }],
    downstream_nodes: ['node-a'],
  };
  const routes = [
    { match: { prefix: '/other' }, route: { cluster: 'other' } },
    { match: { prefix: '/held' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, delay: { fixed_delay: '60s', percentage: pct(100) }, max_active_faults: 1 } } },
    { match: { prefix: '/' }, route: { cluster: 'up' } },
  ];
  const { h, port } = await setup(t, routes, filterConfig);
  const hit = { 'x-chaos': 'on', 'x-envoy-downstream-service-node': 'node-a', 'x-envoy-downstream-service-cluster': 'reviews' };
  assert.equal((await request(port, { headers: hit })).status, 429);
  assert.equal(stat(h, 'http.l.fault.reviews.aborts_injected'), 1, 'per downstream cluster stats');
  assert.equal((await request(port, { headers: { ...hit, 'x-chaos': 'off' } })).status, 200, 'header matcher');
  assert.equal((await request(port, { headers: { ...hit, 'x-envoy-downstream-service-node': 'node-b' } })).status, 200, 'downstream node');
  assert.equal((await request(port, { path: '/other', headers: hit })).status, 200, 'upstream_cluster');

  const held = http.request({ host: '127.0.0.1', port, path: '/held', agent: false });
  held.on('error', () => undefined);
  held.end();
  t.after(() => held.destroy());
  while (stat(h, 'http.l.fault.active_faults') !== 1) await new Promise((res) => setTimeout(res, 10));
  assert.equal((await request(port, { path: '/held' })).status, 200, 'over max_active_faults: no fault');
  assert.equal(stat(h, 'http.l.fault.faults_overflow'), 1);
});

test('unsupported or invalid fault config is refused (NACK) with the field path', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const bad = (cfg: object): string => h.apply(LISTENER_TYPE, [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]), { http_filters: [{ ...FAULT_FILTER, typed_config: { '@type': FAULT, ...cfg } }, ROUTER] })]).join('\n');
  assert.match(bad({ response_rate_limit: { fixed_limit: { limit_kbps: 1 } } }), /response_rate_limit.*not supported/);
  assert.match(bad({ abort: { http_status: 700, percentage: pct(10) } }), /http_status must be in \[200, 600\)/);
  assert.match(bad({ delay: { percentage: pct(10) } }), /exactly one of fixed_delay, header_delay/);
  assert.equal(bad({ abort: { http_status: 503, percentage: pct(10) } }), '');
});

test('over HTTP/2 a gRPC abort is a trailers-only response with grpc-status', async (t) => {
  const routes = [{ match: { prefix: '/' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, abort: { percentage: pct(100), grpc_status: 8 } } } }];
  const { h, port, up } = await setup(t, routes);
  const client = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => client.close());
  const res = await new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
    const s = client.request({ ':method': 'POST', ':path': '/pkg.Svc/Method', 'content-type': 'application/grpc', te: 'trailers' });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    s.on('response', (hd) => (headers = hd));
    s.on('trailers', (tr) => (trailers = tr));
    s.on('error', reject);
    s.on('close', () => resolve({ headers, trailers }));
    s.resume();
    s.end(Buffer.from([0, 0, 0, 0, 0]));
  });
  assert.equal(res.headers[':status'], 200);
  assert.equal(res.trailers['grpc-status'] ?? res.headers['grpc-status'], '8');
  assert.equal(h.streams.at(-1)!.protocol, 'HTTP/2');
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'FI');
  assert.equal(up.requests.length, 0);
});
