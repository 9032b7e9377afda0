// The router's upstream behaviour: retries (retry_on, previous hosts, URX), route and per-try
// timeouts (UT), connect failures (UF), no healthy host (UH), downstream disconnect (DC), and the
// request body rules for retries.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { configure, deadPort, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness, type Upstream } from './harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

async function setup(t: TestContext, clusters: Record<string, unknown>[], routes: Record<string, unknown>[], ups: Upstream[]): Promise<Harness> {
  const h = await startTestRuntime(t, ups);
  await configure(h, { clusters, routes: [routeConfig('r', routes)], listeners: [httpListener('l', 'r')] });
  return h;
}

const flags = (h: Harness) => formatResponseFlags(h.streams.at(-1)!.responseFlags);

test('retries on 5xx go to another host; exhausted retries pass the last response with URX', async (t) => {
  const bad = await startUpstream('bad', (_q, res) => {
    res.writeHead(503);
    res.end('bad');
    return true;
  });
  const good = await startUpstream('good');
  const h = await setup(
    t,
    [staticCluster('mixed', [bad.port, good.port]), staticCluster('allbad', [bad.port])],
    [
      { match: { prefix: '/mixed' }, route: { cluster: 'mixed', retry_policy: { retry_on: '5xx', num_retries: 2, retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }], retry_back_off: { base_interval: '0.001s' } } } },
      { match: { prefix: '/allbad' }, route: { cluster: 'allbad', retry_policy: { retry_on: 'gateway-error', num_retries: 2, retry_back_off: { base_interval: '0.001s' } } } },
      { match: { prefix: '/post' }, route: { cluster: 'mixed', retry_policy: { retry_on: '5xx', num_retries: 3, retry_back_off: { base_interval: '0.001s' } } } },
    ],
    [bad, good],
  );
  const port = h.port('l');
  for (let i = 0; i < 6; i++) {
    const r = await request(port, { path: '/mixed' });
    assert.equal(r.status, 200, `request ${i}`);
    assert.equal(r.json().server, 'good');
  }
  const before = bad.requests.length;
  const r = await request(port, { path: '/allbad' });
  assert.equal(r.status, 503);
  assert.equal(r.body, 'bad');
  assert.equal(bad.requests.length - before, 3, 'one try and two retries');
  assert.equal(flags(h), 'URX');
  const stats = new Map(h.rt.stats.all().map((s) => [s.name, s.value]));
  assert.ok(stats.get('cluster.allbad.upstream_rq_retry')! >= 2);
  // Envoy charges the retried 503s under retry. (router.cc onUpstreamHeaders), the final one as usual.
  assert.equal(stats.get('cluster.allbad.upstream_rq_503'), 1);
  assert.equal(stats.get('cluster.allbad.retry.upstream_rq_503'), 2);

  // A buffered (small, content-length) POST body is replayed on retry.
  const p = await request(port, { path: '/post', method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
  assert.equal(p.status, 200);
  assert.equal(p.json().body, 'payload');
});

test('route timeout → 504 UT; per-try timeout retries; connect failure → 503 UF; empty cluster → 503 UH', async (t) => {
  let hangs = 0;
  const slow = await startUpstream('slow', (req) => {
    if (req.url?.startsWith('/hang')) {
      hangs++;
      return true;
    }
    return false;
  });
  const dead = await deadPort();
  const h = await setup(
    t,
    [staticCluster('slow', [slow.port]), staticCluster('dead', [dead], { connect_timeout: '0.5s' }), { name: 'empty', type: 'STATIC', load_assignment: { cluster_name: 'empty', endpoints: [] } }],
    [
      { match: { prefix: '/hang/route' }, route: { cluster: 'slow', timeout: '0.2s' } },
      { match: { prefix: '/hang/try' }, route: { cluster: 'slow', timeout: '3s', retry_policy: { retry_on: '5xx', num_retries: 1, per_try_timeout: '0.15s', retry_back_off: { base_interval: '0.001s' } } } },
      { match: { prefix: '/dead' }, route: { cluster: 'dead', retry_policy: { retry_on: 'connect-failure', num_retries: 1, retry_back_off: { base_interval: '0.001s' } } } },
      { match: { prefix: '/empty' }, route: { cluster: 'empty' } },
    ],
    [slow],
  );
  const port = h.port('l');
  let r = await request(port, { path: '/hang/route' });
  assert.equal(r.status, 504);
  assert.equal(r.body, 'upstream request timeout');
  assert.equal(flags(h), 'UT');

  hangs = 0;
  r = await request(port, { path: '/hang/try' });
  assert.equal(r.status, 504);
  assert.equal(hangs, 2, 'the per-try timeout retried once');
  assert.match(flags(h), /UT/);

  r = await request(port, { path: '/dead' });
  assert.equal(r.status, 503);
  assert.match(r.body, /connection failure/);
  assert.equal(flags(h), 'UF,URX');

  r = await request(port, { path: '/empty' });
  assert.equal(r.status, 503);
  assert.equal(r.body, 'no healthy upstream');
  assert.equal(flags(h), 'UH');
});

test('a client that disconnects mid-request is recorded as DC and the upstream request is reset', async (t) => {
  let upstreamClosed = false;
  const up = await startUpstream('up', (req) => {
    req.socket.on('close', () => (upstreamClosed = true));
    return true;
  });
  const h = await setup(t, [staticCluster('up', [up.port])], [{ match: { prefix: '/' }, route: { cluster: 'up' } }], [up]);
  const req = http.request({ host: '127.0.0.1', port: h.port('l'), path: '/wait' });
  req.on('error', () => undefined);
  req.end();
  while (up.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  req.destroy();
  while (h.streams.length === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(flags(h), 'DC');
  while (!upstreamClosed) await new Promise((r) => setTimeout(r, 5));
  assert.equal(h.rt.ctx.clusters.get('up')!.hosts()[0].activeRequests, 0);
});

test('streamed request bodies and large responses keep their bytes; keep-alive upstream connections are reused', async (t) => {
  const up = await startUpstream('up', (req, res, body) => {
    if (req.url === '/big') {
      res.end(Buffer.alloc(5 << 20, 'x'));
      return true;
    }
    res.end(String(body.length));
    return true;
  });
  const h = await setup(t, [staticCluster('up', [up.port])], [{ match: { prefix: '/' }, route: { cluster: 'up' } }], [up]);
  const port = h.port('l');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const body = 'y'.repeat(3 << 20);
  const r = await request(port, { path: '/upload', method: 'POST', body, headers: { 'content-length': String(body.length) }, agent });
  assert.equal(r.body, String(body.length));
  const chunked = await new Promise<string>((resolve, reject) => {
    const q = http.request({ host: '127.0.0.1', port, path: '/chunked', method: 'PUT', agent }, (res) => {
      let s = '';
      res.on('data', (c) => (s += c));
      res.on('end', () => resolve(s));
    });
    q.on('error', reject);
    for (let i = 0; i < 10; i++) q.write('z'.repeat(1000));
    q.end();
  });
  assert.equal(chunked, '10000');
  const big = await request(port, { path: '/big', agent });
  assert.equal(big.body.length, 5 << 20);
  for (let i = 0; i < 20; i++) await request(port, { path: '/small', agent });
  assert.equal(up.connections, 1, 'one pooled upstream connection served every request');
});

test('aborted uploads and upstreams that reset mid-body never take the proxy down', async (t) => {
  const up = await startUpstream('up', (req, res) => {
    if (req.url === '/reset') {
      req.socket.destroy();
      return true;
    }
    res.end('ok');
    return true;
  });
  // The harness reads the whole body before calling the handler; /reset-early resets on headers.
  const early = http.createServer((req) => req.socket.destroy());
  await new Promise<void>((r) => early.listen(0, '127.0.0.1', r));
  t.after(() => early.close());
  const earlyPort = (early.address() as AddressInfo).port;
  const h = await setup(t, [staticCluster('up', [up.port]), staticCluster('early', [earlyPort])], [{ match: { prefix: '/early' }, route: { cluster: 'early' } }, { match: { prefix: '/' }, route: { cluster: 'up' } }], [up]);
  const port = h.port('l');
  // A client that sends part of a chunked body and disappears.
  const q = http.request({ host: '127.0.0.1', port, path: '/upload', method: 'POST' });
  q.on('error', () => undefined);
  q.write('x'.repeat(10_000));
  await new Promise((r) => setTimeout(r, 50));
  q.destroy();
  // An upstream that resets while the body is still streaming.
  const big = http.request({ host: '127.0.0.1', port, path: '/early', method: 'POST' });
  const status = new Promise<number>((resolve) => {
    big.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    big.on('error', () => resolve(-1));
  });
  for (let i = 0; i < 20; i++) big.write('y'.repeat(64 * 1024));
  big.end();
  assert.ok([503, -1].includes(await status));
  assert.equal((await request(port, { path: '/after' })).body, 'ok', 'the proxy still serves');
});

test('stream_idle_timeout → 408 SI; normalize_path and merge_slashes rewrite the path before routing', async (t) => {
  const up = await startUpstream('up', (req, res) => {
    if (req.url === '/hang') return true;
    res.end(req.url);
    return true;
  });
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/b/' }, route: { cluster: 'up' } }, { match: { path: '/hang' }, route: { cluster: 'up', timeout: '0s' } }])],
    listeners: [httpListener('l', 'r', { stream_idle_timeout: '0.2s', normalize_path: true, merge_slashes: true })],
  });
  const port = h.port('l');
  const r = await request(port, { path: '/hang' });
  assert.equal(r.status, 408);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'SI');
  assert.equal((await request(port, { path: '/a/../b//c/./d?x=/../y' })).body, '/b/c/d?x=/../y');
});

test('the route timeout holds when Istio also sends max_stream_duration: 0s (no limit)', async (t) => {
  const up = await startUpstream('up', () => true);
  const h = await setup(t, [staticCluster('up', [up.port])], [{ match: { prefix: '/' }, route: { cluster: 'up', timeout: '0.3s', max_stream_duration: { max_stream_duration: '0s', grpc_timeout_header_max: '0s' } } }], [up]);
  const r = await request(h.port('l'), { path: '/slow' });
  assert.equal(r.status, 504);
  assert.equal(flags(h), 'UT');
});
