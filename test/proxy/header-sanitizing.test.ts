// Envoy's internal/external request rules: x-envoy-* headers that steer a proxy survive only on
// internal requests; a gateway (use_remote_address) never trusts them from outside. The router
// consumes the ones it honours (router-headers.ts): x-envoy-upstream-rq-timeout-ms shows in the
// upstream's x-envoy-expected-rq-timeout-ms (60000 kept, 15000 the route default when stripped).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { localAddress } from '../../src/proxy/local-address.ts';
import { configure, httpListener, request, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const STEERING = {
  'x-envoy-retry-on': '5xx',
  'x-envoy-max-retries': '7',
  'x-envoy-upstream-rq-timeout-ms': '60000',
  'x-envoy-force-trace': 'true',
  'x-envoy-internal': 'true',
  'x-envoy-decorator-operation': 'spoofed',
  'x-envoy-external-address': '198.51.100.1',
  'x-envoy-peer-metadata-id': 'sidecar~1.2.3.4~a.b~b.svc.cluster.local',
  'x-internal-secret': 'leak',
};

test('x-envoy-* steering headers: kept on internal requests, stripped from external ones, edge requests get x-envoy-external-address', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const routes = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }], ['*'], { internal_only_headers: ['X-Internal-Secret'] });
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    listeners: [
      httpListener('gateway', routes, { use_remote_address: true }),
      httpListener('gateway_public', routes, { use_remote_address: true, internal_address_config: { cidr_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }] } }),
      httpListener('sidecar', routes, { use_remote_address: false }),
      httpListener('sidecar_hop', routes, { use_remote_address: false, xff_num_trusted_hops: 1 }),
    ],
  });
  const seen = async (listener: string, extra: Record<string, string> = {}) => {
    const r = await request(h.port(listener), { headers: { ...STEERING, ...extra } });
    assert.equal(r.status, 200);
    return r.json().headers;
  };

  // Gateway, loopback client, no earlier XFF: internal (loopback is in Envoy's default ranges).
  let got = await seen('gateway');
  assert.equal(got['x-envoy-internal'], 'true');
  assert.equal(got['x-envoy-expected-rq-timeout-ms'], '60000');
  assert.equal(got['x-envoy-retry-on'], undefined, 'consumed by the router');
  assert.equal(got['x-internal-secret'], 'leak');
  // As Envoy: for a loopback peer the proxy appends its own address (LocalInfo), not 127.0.0.1.
  assert.equal(got['x-forwarded-for'], localAddress());

  // Gateway, a client that claims an earlier hop: external edge request.
  got = await seen('gateway', { 'x-forwarded-for': '203.0.113.7' });
  for (const k of ['x-envoy-retry-on', 'x-envoy-max-retries', 'x-envoy-upstream-rq-timeout-ms', 'x-envoy-force-trace', 'x-envoy-internal', 'x-envoy-decorator-operation', 'x-internal-secret']) assert.equal(got[k], undefined, k);
  assert.equal(got['x-envoy-external-address'], '127.0.0.1');
  assert.equal(got['x-envoy-expected-rq-timeout-ms'], '15000');
  assert.equal(got['x-forwarded-for'], `203.0.113.7,${localAddress()}`, 'appended with "," as Envoy');
  // Not a steering header: the peer metadata exchange must keep working across an edge.
  assert.equal(got['x-envoy-peer-metadata-id'], STEERING['x-envoy-peer-metadata-id']);

  // internal_address_config without loopback: the same loopback client is external.
  got = await seen('gateway_public');
  assert.equal(got['x-envoy-expected-rq-timeout-ms'], '15000');
  assert.equal(got['x-envoy-internal'], undefined);
  assert.equal(got['x-envoy-external-address'], '127.0.0.1');

  // Sidecar (no use_remote_address): internal only when XFF holds one internal address.
  got = await seen('sidecar', { 'x-forwarded-for': '10.1.2.3' });
  assert.equal(got['x-envoy-internal'], 'true');
  assert.equal(got['x-envoy-expected-rq-timeout-ms'], '60000');
  got = await seen('sidecar');
  assert.equal(got['x-envoy-expected-rq-timeout-ms'], '15000');
  assert.equal(got['x-internal-secret'], undefined);
  // Not an edge: the address the edge recorded travels on.
  assert.equal(got['x-envoy-external-address'], '198.51.100.1');
  assert.equal(got['x-envoy-decorator-operation'], 'spoofed');
  got = await seen('sidecar', { 'x-forwarded-for': '203.0.113.7' });
  assert.equal(got['x-envoy-expected-rq-timeout-ms'], '15000');

  // Trusted hops without use_remote_address: Envoy's getLastAddressFromXFF allows the internal
  // check only for a single XFF address with no hop skipped, so a request is never internal here.
  got = await seen('sidecar_hop', { 'x-forwarded-for': '192.168.1.1, 10.0.0.9' });
  assert.equal(got['x-envoy-internal'], undefined);
  assert.equal(got['x-envoy-expected-rq-timeout-ms'], '15000');
  got = await seen('sidecar_hop', { 'x-forwarded-for': '10.0.0.9' });
  assert.equal(got['x-envoy-internal'], undefined);
});

test('internal_address_config: a prefix that is not an address is a config error with its path', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  await assert.rejects(
    configure(h, { listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]), { internal_address_config: { cidr_ranges: [{ address_prefix: 'ten.0.0.0', prefix_len: 8 }] } })] }),
    /internal_address_config\.cidr_ranges\[0\]\.address_prefix.*not an IPv4 or IPv6 address/,
  );
});

test("a response's hop-by-hop headers stay on the upstream's hop; its other headers pass", async (t) => {
  // A raw upstream, so that the headers are exactly these (node's server would add its own Connection).
  const up = net.createServer((s) => {
    s.once('data', () =>
      s.write(
        'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30\r\n' +
          'Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\nok',
      ),
    );
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const upstream = { close: () => new Promise<void>((r) => up.close(() => r())) };
  const h = await startTestRuntime(t, [upstream]);
  await configure(h, {
    clusters: [staticCluster('up', [(up.address() as net.AddressInfo).port])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }])],
    listeners: [httpListener('l', 'r')],
  });
  const r = await request(h.port('l'));
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
  assert.equal(r.headers['x-kept'], 'yes');
  for (const name of ['keep-alive', 'proxy-connection', 'upgrade']) assert.equal(r.headers[name], undefined, name);
  assert.notEqual(r.headers.connection, 'upgrade');
});
