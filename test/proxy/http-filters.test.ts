// The HTTP filter contract: a filter registered through the registry, compiled once, with
// StopIteration/continueDecoding, local replies (gRPC-aware), per-route config, body access and
// response encoding.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startRuntime, startUpstream, staticCluster, ROUTER } from './harness.ts';
import { registerHttpFilter } from '../../src/proxy/filters/registry.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type StreamCallbacks } from '../../src/proxy/filters/filter.ts';
import { ResponseFlag, formatResponseFlags } from '../../src/proxy/response-flags.ts';

// A real Envoy type (the schema check knows it) standing in for a test filter's config:
// delay.fixed_delay → delay, upstream_cluster → tag, abort (per route) → deny.
const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const PER_ROUTE = TYPE;
let compiles = 0;

interface GateConfig {
  delayMs: number;
  tag: string;
}

class Gate implements HttpFilter {
  private readonly c: GateConfig;
  private readonly cb: StreamCallbacks;
  constructor(c: GateConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }
  decodeHeaders(head: { headers: Record<string, unknown>; path: string }, endStream: boolean): FilterStatus {
    const deny = this.cb.perRouteConfig<{ deny: boolean }>('test.gate')?.deny;
    if (deny || head.headers['x-deny'] !== undefined) {
      this.cb.sendLocalReply({ status: 403, body: 'RBAC: access denied', flags: ResponseFlag.UnauthorizedExternalService, details: 'gate_denied' });
      return FilterStatus.StopIteration;
    }
    head.headers['x-gate'] = this.c.tag;
    // A request with a body: decodeData decides, once the whole body is in.
    if (!endStream) return FilterStatus.StopIterationAndBuffer;
    setTimeout(() => this.cb.continueDecoding(), this.c.delayMs);
    return FilterStatus.StopIteration;
  }
  decodeData(body: Buffer): FilterStatus {
    if (body.toString().includes('forbidden')) {
      this.cb.sendLocalReply({ status: 413, body: 'body refused' });
      return FilterStatus.StopIteration;
    }
    return FilterStatus.Continue;
  }
  encodeHeaders(head: { headers: Record<string, unknown> }): void {
    head.headers['x-gate-response'] = this.c.tag;
  }
}

const factory: HttpFilterFactory<GateConfig, { deny: boolean }> = {
  name: 'test.gate',
  typeUrls: [TYPE],
  perRouteTypeUrls: [PER_ROUTE],
  compile(r, ctx) {
    compiles++;
    const d = r.obj('delay');
    const c = { delayMs: d?.durationMs('fixed_delay', 0) ?? 0, tag: r.str('upstream_cluster') };
    d?.done();
    if (!c.tag) ctx.issues.error(r.at('upstream_cluster'), 'tag is required');
    r.done();
    return c;
  },
  compilePerRoute(r) {
    const deny = r.has('abort');
    r.accept('abort');
    r.done();
    return { deny };
  },
  create: (c, cb) => new Gate(c, cb),
};

test('a registered filter delays, mutates, refuses and sees per-route config', async (t) => {
  const up = await startUpstream('up');
  const h = await startRuntime();
  // After the runtime's setup(): this test's factory replaces any built-in one for the type.
  registerHttpFilter(factory);
  t.after(async () => {
    h.close();
    await up.close();
  });
  const filters = [{ name: 'test.gate', typed_config: { '@type': TYPE, upstream_cluster: 'g1', delay: { fixed_delay: '0.02s' } } }, ROUTER];
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/closed' }, route: { cluster: 'up' }, typed_per_filter_config: { 'test.gate': { '@type': PER_ROUTE, abort: { http_status: 403 } } } }, { match: { prefix: '/' }, route: { cluster: 'up' } }])],
    listeners: [httpListener('l', 'r', { http_filters: filters })],
  });
  assert.equal(compiles, 1, 'compiled once per update, not per request');
  const port = h.port('l');
  for (let i = 0; i < 3; i++) {
    const r = await request(port, { path: '/open' });
    assert.equal(r.status, 200);
    assert.equal(r.json().headers['x-gate'], 'g1');
    assert.equal(r.headers['x-gate-response'], 'g1');
  }
  assert.equal(compiles, 1);

  let r = await request(port, { path: '/closed' });
  assert.equal(r.status, 403);
  assert.equal(r.body, 'RBAC: access denied');
  assert.equal(r.headers['x-gate-response'], 'g1', 'local replies go through the encoders');
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'UAEX');
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'gate_denied');

  r = await request(port, { path: '/grpc', headers: { 'content-type': 'application/grpc', 'x-deny': '1' } });
  assert.equal(r.status, 200, 'gRPC local replies are HTTP 200');
  assert.equal(r.headers['grpc-status'], '7');
  assert.equal(decodeURIComponent(String(r.headers['grpc-message'])), 'RBAC: access denied');

  r = await request(port, { path: '/post', method: 'POST', body: 'this is forbidden' });
  assert.equal(r.status, 413);
  r = await request(port, { path: '/post', method: 'POST', body: 'fine' });
  assert.equal(r.json().body, 'fine');
  assert.equal(up.requests.filter((q) => q.url === '/post').length, 1, 'the refused body never reached the upstream');

  // Config errors from compile() NACK the listener.
  const errs = h.apply('type.googleapis.com/envoy.config.listener.v3.Listener', [httpListener('l', 'r', { http_filters: [{ name: 'test.gate', typed_config: { '@type': TYPE } }, ROUTER] })]);
  assert.match(errs.join('\n'), /tag is required/);
});
