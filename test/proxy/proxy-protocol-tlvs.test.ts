// PROXY protocol v2 TLVs, and headers without a downstream connection, checked against HAProxy on
// both sides: HAProxy's send-proxy-v2 (unique-id and crc32c TLVs) in front of the proxy, and
// HAProxy's accept-proxy behind it, whose own parser reports what reached it (fc_pp_unique_id,
// fc_pp_authority, src, fc_rcvd_proxy) as request headers to an echo server.
//   - the listener filter keeps the TLVs pass_through_tlvs selects; the upstream_proxy_protocol
//     socket sends added_tlvs, then those it passes through;
//   - rules put a TLV's value in connection dynamic metadata, which network filters read
//     (ext_authz filter_enabled_metadata, rbac metadata principals);
//   - tlv_location FILTER_STATE keeps them out of dynamic metadata;
//   - active health checks (HTTP/1.1, HTTP/2, gRPC, TCP) through a wrapped cluster send what Envoy
//     sends: v1 with the check connection's own addresses, v2 a LOCAL header.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { addr, configure, deadPort, httpListener, routeConfig, startTestRuntime, startUpstream, staticCluster, type Echo } from './harness.ts';
import { startHeaderServer } from '../helpers/proxy-protocol-server.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, NETWORK_EXT_AUTHZ_TYPE, NETWORK_RBAC_TYPE, packAny, PROXY_PROTOCOL_TYPE, TCP_PROXY_TYPE, unpackAny, UPSTREAM_PROXY_PROTOCOL_TYPE } from '../../src/envoy/index.ts';
import { encodeProxyHeader, parseProxyHeader } from '../../src/proxy/network/proxy-protocol-header.ts';
import { proxyHeaderFor, proxyPoolKey } from '../../src/proxy/upstream/upstream-proxy-protocol.ts';
import { proxyProtocolStats, proxyProtocolVerdict, readProxyProtocolFilter } from '../../src/proxy/listener/proxy-protocol-filter.ts';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { Stats } from '../../src/proxy/stats/stats.ts';
import { freePort } from '../../src/local/ports.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { HEALTH_SERVICE } from '../helpers/grpc-health-h2.ts';
import { waitFor } from '../helpers/wait.ts';

const RAW = { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } };
const PP2_TYPE_AUTHORITY = 0x02;
const PP2_TYPE_CRC32C = 0x03;
const PP2_TYPE_UNIQUE_ID = 0x05;

function wrapped(config: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { transport_socket: { name: 'envoy.transport_sockets.upstream_proxy_protocol', typed_config: { '@type': UPSTREAM_PROXY_PROTOCOL_TYPE, config, transport_socket: RAW, ...extra } } };
}

function proxyProtocolFilter(config: Record<string, unknown>) {
  return { name: 'envoy.filters.listener.proxy_protocol', typed_config: { '@type': PROXY_PROTOCOL_TYPE, ...config } };
}

const HAPROXY_DEFAULTS = 'global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n';

/** A frontend sending to `to` with a v2 header carrying the unique-id TLV `uniqueId` and a CRC32C TLV. */
function sender(name: string, port: number, uniqueId: string, to: number): string {
  return `frontend ${name}\n  bind 127.0.0.1:${port}\n  unique-id-format ${uniqueId}\n  default_backend ${name}_be\nbackend ${name}_be\n  server s 127.0.0.1:${to} send-proxy-v2 proxy-v2-options unique-id,crc32c\n`;
}

/** A frontend reading a PROXY header, then passing what its parser found to `to` as request headers. */
function receiver(port: number, to: number): string {
  return (
    `frontend recv\n  bind 127.0.0.1:${port} accept-proxy\n` +
    '  http-request set-header x-pp-received %[fc_rcvd_proxy]\n  http-request set-header x-pp-unique-id %[fc_pp_unique_id]\n' +
    '  http-request set-header x-pp-authority %[fc_pp_authority]\n  http-request set-header x-pp-src %[src]\n' +
    `  default_backend recv_be\nbackend recv_be\n  server e 127.0.0.1:${to}\n`
  );
}

async function startHaproxy(t: { after(fn: () => unknown): void }, config: string, ports: number[]): Promise<void> {
  const conf = path.join(tempDir(t), 'haproxy.cfg');
  writeFileSync(conf, HAPROXY_DEFAULTS + config);
  const child = spawn('haproxy', ['-db', '-f', conf], { stdio: 'ignore' });
  t.after(() => child.kill());
  const accepting = (port: number) => () =>
    new Promise<true | undefined>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true))).once('error', () => r(undefined));
    });
  for (const p of ports) await waitFor(`haproxy listening on ${p}`, accepting(p));
}

/** GET `path` through `port` from 127.0.0.2 (so the client differs from HAProxy's own 127.0.0.1). */
function get(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, localAddress: '127.0.0.2', agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

test('TLVs from HAProxy send-proxy-v2 cross the proxy to HAProxy accept-proxy: pass_through_tlvs on both sides, added_tlvs first', async (t) => {
  const echo = await startUpstream('echo');
  const h = await startTestRuntime(t, [echo]);
  const [front, recv] = [await freePort(), await freePort()];
  const kept = { match_type: 'INCLUDE', tlv_type: [PP2_TYPE_UNIQUE_ID] };
  await configure(h, {
    clusters: [
      staticCluster('tlvs', [recv], wrapped({ version: 'V2', pass_through_tlvs: { match_type: 'INCLUDE_ALL' }, added_tlvs: [{ type: PP2_TYPE_AUTHORITY, value: Buffer.from('svc.example').toString('base64') }] })),
      // pass_through_tlvs unset on the socket: the kept TLVs stay behind (Envoy's default).
      staticCluster('no-tlvs', [recv], wrapped({ version: 'V2' })),
    ],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'tlvs' } }]), routeConfig('r2', [{ match: { prefix: '/' }, route: { cluster: 'no-tlvs' } }])],
    listeners: [
      httpListener('pp', 'r', {}, { listener_filters: [proxyProtocolFilter({ pass_through_tlvs: kept })] }),
      httpListener('pp-unsent', 'r2', {}, { listener_filters: [proxyProtocolFilter({ pass_through_tlvs: kept })] }),
    ],
  });
  const unsent = await freePort();
  await startHaproxy(t, sender('send', front, 'tenant-a', h.port('pp')) + sender('send_unsent', unsent, 'tenant-b', h.port('pp-unsent')) + receiver(recv, echo.port), [front, unsent, recv]);

  const reply = await get(front);
  assert.equal(reply.status, 200, reply.body);
  const seen = (JSON.parse(reply.body) as Echo).headers;
  assert.equal(seen['x-pp-received'], '1', 'HAProxy accepted the header');
  assert.equal(seen['x-pp-src'], '127.0.0.2', 'the source is the client of the first HAProxy');
  assert.equal(seen['x-pp-unique-id'], 'tenant-a', 'the unique-id TLV was kept by the listener and passed through');
  assert.equal(seen['x-pp-authority'], 'svc.example', 'added_tlvs');

  const other = JSON.parse((await get(unsent)).body) as Echo;
  assert.equal(other.headers['x-pp-received'], '1');
  assert.equal(other.headers['x-pp-unique-id'] ?? '', '', 'no pass_through_tlvs on the socket: nothing passes');
});

test('the bytes sent upstream: added_tlvs, then the kept TLVs the socket selects; the CRC32C TLV the listener did not keep is gone', async (t) => {
  const up = await startHeaderServer(t, (s) => http.createServer((_q, res) => res.end('ok')).emit('connection', s));
  const h = await startTestRuntime(t);
  const front = await freePort();
  await configure(h, {
    clusters: [staticCluster('tlvs', [up.port], wrapped({ version: 'V2', pass_through_tlvs: { match_type: 'INCLUDE', tlv_type: [PP2_TYPE_UNIQUE_ID, PP2_TYPE_AUTHORITY] }, added_tlvs: [{ type: 0xe0, value: Buffer.from('added').toString('base64') }, { type: PP2_TYPE_UNIQUE_ID, value: Buffer.from('replaced').toString('base64') }] }))],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'tlvs' } }])],
    listeners: [httpListener('pp', 'r', {}, { listener_filters: [proxyProtocolFilter({ pass_through_tlvs: { match_type: 'INCLUDE', tlv_type: [PP2_TYPE_UNIQUE_ID] } })] })],
  });
  await startHaproxy(t, sender('send', front, 'tenant-a', h.port('pp')), [front]);
  assert.equal((await get(front)).status, 200);
  const parsed = parseProxyHeader(up.headers[0]);
  assert.ok(parsed.kind === 'header', `a v2 header, got ${up.headers[0]?.toString('hex')}`);
  // added_tlvs set the unique id: the downstream's is not sent twice (Envoy: added_tlvs override pass-through).
  assert.deepEqual(
    parsed.tlvs.map((x) => [x.type, x.value.toString()]),
    [
      [0xe0, 'added'],
      [PP2_TYPE_UNIQUE_ID, 'replaced'],
    ],
  );
  assert.ok(!parsed.tlvs.some((x) => x.type === PP2_TYPE_CRC32C));
});

test('rules put a TLV value in connection dynamic metadata: a network ext_authz enabled by it checks (and, its service down, closes) only the tenant it names; not under tlv_location FILTER_STATE', async (t) => {
  const echo = await startUpstream('echo');
  const h = await startTestRuntime(t, [echo]);
  const dead = await deadPort();
  const [ok, blocked, blockedFs] = [await freePort(), await freePort(), await freePort()];
  const namespace = 'tenants';
  const listener = (name: string, tlvLocation: string) => ({
    name,
    address: addr(0),
    listener_filters: [proxyProtocolFilter({ tlv_location: tlvLocation, rules: [{ tlv_type: PP2_TYPE_UNIQUE_ID, on_tlv_present: { metadata_namespace: namespace, key: 'tenant' } }] })],
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.ext_authz',
            typed_config: {
              '@type': NETWORK_EXT_AUTHZ_TYPE,
              stat_prefix: `${name}.`,
              transport_api_version: 'V3',
              grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '1s' },
              filter_enabled_metadata: { filter: namespace, path: [{ key: 'tenant' }], value: { string_match: { exact: 'blocked' } } },
            },
          },
          { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: name, cluster: 'echo' } },
        ],
      },
    ],
  });
  await configure(h, {
    clusters: [staticCluster('echo', [echo.port]), staticCluster('authz', [dead], { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } })],
    listeners: [listener('pp', 'DYNAMIC_METADATA'), listener('pp-fs', 'FILTER_STATE')],
  });
  await startHaproxy(t, sender('send_ok', ok, 'fine', h.port('pp')) + sender('send_blocked', blocked, 'blocked', h.port('pp')) + sender('send_blocked_fs', blockedFs, 'blocked', h.port('pp-fs')), [ok, blocked, blockedFs]);
  assert.equal((await get(ok)).status, 200);
  assert.equal(h.rt.stats.counter('ext_authz.pp.disabled').value, 1, 'the filter did not run for tenant "fine"');
  // HAProxy answers 502 when the proxy closes the connection before a response.
  assert.equal((await get(blocked)).status, 502);
  assert.equal(h.rt.stats.counter('ext_authz.pp.error').value, 1, 'tenant "blocked" was checked');
  // tlv_location FILTER_STATE: the value is not in dynamic metadata, so the filter stays off.
  assert.equal((await get(blockedFs)).status, 200);
  assert.equal(h.rt.stats.counter('ext_authz.pp-fs.disabled').value, 1);
});

test('active health checks (HTTP/1.1, HTTP/2, gRPC, TCP) through upstream_proxy_protocol: v1 names the check connection itself, v2 sends LOCAL; HAProxy accept-proxy takes both', async (t) => {
  const echo = await startUpstream('echo');
  const h = await startTestRuntime(t, [echo]);
  const recv = await freePort();
  await startHaproxy(t, receiver(recv, echo.port), [recv]);
  const bytes = await startHeaderServer(t, (s) => http.createServer((_q, res) => res.end('ok')).emit('connection', s));
  const grpcRecv = await freePort();
  const grpcPort = await startGrpcServer(t, HEALTH_SERVICE, { Check: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { status: 1 }) });
  // TCP mode: HAProxy reads the header, then relays the h2c bytes.
  await startHaproxy(t, `frontend grpc_recv\n  mode tcp\n  bind 127.0.0.1:${grpcRecv} accept-proxy\n  default_backend grpc_be\nbackend grpc_be\n  mode tcp\n  server g 127.0.0.1:${grpcPort}\n`, [grpcRecv]);
  const check = (path: string, kind: Record<string, unknown> = { http_health_check: { path } }) => ({
    health_checks: [{ timeout: '1s', interval: '0.1s', no_traffic_interval: '0.1s', unhealthy_threshold: 1, healthy_threshold: 1, ...kind }],
  });
  await configure(h, {
    clusters: [
      staticCluster('hc-v1', [recv], { ...wrapped({ version: 'V1' }), ...check('/v1') }),
      staticCluster('hc-v2', [recv], { ...wrapped({ version: 'V2', added_tlvs: [{ type: 0xe0, value: Buffer.from('x').toString('base64') }] }), ...check('/v2') }),
      staticCluster('hc-h2', [recv], { ...wrapped({ version: 'V2' }), ...check('/h2', { http_health_check: { path: '/h2', codec_client_type: 'HTTP2' } }) }),
      staticCluster('hc-bytes', [bytes.port], { ...wrapped({ version: 'V2' }), ...check('/', { tcp_health_check: {} }) }),
      staticCluster('hc-grpc-v1', [grpcRecv], { ...wrapped({ version: 'V1' }), ...check('/', { grpc_health_check: {} }) }),
      staticCluster('hc-grpc-v2', [grpcRecv], { ...wrapped({ version: 'V2' }), ...check('/', { grpc_health_check: {} }) }),
    ],
  });
  const healthy = (c: string) => () => (h.rt.stats.gauge(`cluster.${c}.health_check.healthy`).value === 1 ? true : undefined);
  for (const c of ['hc-v1', 'hc-v2', 'hc-h2', 'hc-bytes', 'hc-grpc-v1', 'hc-grpc-v2']) await waitFor(`${c} healthy`, healthy(c), 10_000);
  const v1 = await waitFor('a /v1 check at the echo', () => echo.requests.find((r) => r.url === '/v1'), 10_000);
  assert.equal(v1.headers['x-pp-received'], '1', 'HAProxy read a v1 header');
  assert.equal(v1.headers['x-pp-src'], '127.0.0.1', "the check connection's own source");
  const v2 = echo.requests.find((r) => r.url === '/v2')!;
  assert.equal(v2.headers['x-pp-received'], '1', 'HAProxy read a v2 header');
  assert.equal(v2.headers['x-pp-unique-id'] ?? '', '');
  assert.equal(bytes.headers[0].toString('hex'), '0d0a0d0a000d0a515549540a' + '20000000', 'the v2 LOCAL header, no addresses, no TLVs');
});

test("rules on HAProxy's own header bytes: dynamic metadata by namespace (default the filter's name), or the filter state object under tlv_location FILTER_STATE", async (t) => {
  const sink = await startHeaderServer(t, (s) => http.createServer((_q, res) => res.end('ok')).emit('connection', s));
  const front = await freePort();
  await startHaproxy(t, sender('send', front, 'tenant-a', sink.port), [front]);
  assert.equal((await get(front)).status, 200);
  const header = sink.headers[0];
  const rules = [
    { tlv_type: PP2_TYPE_UNIQUE_ID, on_tlv_present: { key: 'uid' } },
    { tlv_type: PP2_TYPE_CRC32C, on_tlv_present: { metadata_namespace: 'checks', key: 'crc' } },
  ];
  const verdict = (config: Record<string, unknown>) => {
    const issues = new Issues();
    const c = readProxyProtocolFilter(new Reader(config, 'typed_config', issues));
    assert.deepEqual([...issues.errors, ...issues.warnings], []);
    const v = proxyProtocolVerdict(header, c, proxyProtocolStats(new Stats(), c));
    assert.ok(v.accept);
    return v.tlvs;
  };
  const md = verdict({ rules })!;
  assert.equal(md.dynamicMetadata?.['envoy.filters.listener.proxy_protocol']?.uid, 'tenant-a');
  assert.equal(typeof md.dynamicMetadata?.checks?.crc, 'string', 'the CRC32C TLV under its own namespace');
  assert.equal(md.filterState, undefined);
  assert.deepEqual(md.passThrough, [], 'pass_through_tlvs unset: nothing kept');
  const fs = verdict({ rules, tlv_location: 'FILTER_STATE', pass_through_tlvs: {} })!;
  assert.equal(fs.dynamicMetadata, undefined);
  assert.equal(fs.filterState?.['envoy.network.proxy_protocol.tlv']?.uid, 'tenant-a');
  assert.deepEqual(fs.passThrough.map((x) => x.type).sort(), [PP2_TYPE_CRC32C, PP2_TYPE_UNIQUE_ID], 'pass_through_tlvs {} is INCLUDE_ALL');
});

test('the TLV fields survive protobuf (xDS): listener rules, pass_through_tlvs, tlv_location; socket added_tlvs, tlv_as_pool_key', () => {
  const filter = proxyProtocolFilter({ rules: [{ tlv_type: 5, on_tlv_present: { metadata_namespace: 'ns', key: 'k' } }], pass_through_tlvs: { match_type: 'INCLUDE', tlv_type: [5] }, tlv_location: 'FILTER_STATE' });
  const listener = { name: 'l', address: addr(1), listener_filters: [filter] };
  assert.deepEqual(unpackAny(packAny(LISTENER_TYPE, listener)), listener);
  const cluster = { name: 'c', ...wrapped({ version: 'V2', pass_through_tlvs: { match_type: 'INCLUDE', tlv_type: [2] }, added_tlvs: [{ type: 0xe0, value: Buffer.from('x').toString('base64') }] }, { tlv_as_pool_key: true }) };
  assert.deepEqual(unpackAny(packAny(CLUSTER_TYPE, cluster)), cluster);
});

test("a host's own TLVs (endpoint typed_filter_metadata PerHostConfig) override the socket's added_tlvs of their type", async (t) => {
  const echo = await startUpstream('echo');
  const h = await startTestRuntime(t, [echo]);
  const recv = await freePort();
  await startHaproxy(t, receiver(recv, echo.port), [recv]);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const perHost = { '@type': 'type.googleapis.com/envoy.config.core.v3.PerHostConfig', added_tlvs: [{ type: PP2_TYPE_AUTHORITY, value: b64('host.example') }] };
  const endpoint = (typed: boolean) => ({ endpoint: { address: addr(recv) }, ...(typed ? { metadata: { typed_filter_metadata: { 'envoy.transport_sockets.proxy_protocol': perHost } } } : {}) });
  const cluster = (name: string, typed: boolean) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [endpoint(typed)] }] },
    ...wrapped({ version: 'V2', added_tlvs: [{ type: PP2_TYPE_AUTHORITY, value: b64('cluster.example') }, { type: PP2_TYPE_UNIQUE_ID, value: b64('from-cluster') }] }),
  });
  await configure(h, {
    clusters: [cluster('per-host', true), cluster('plain', false)],
    routes: [routeConfig('r', [{ match: { prefix: '/host' }, route: { cluster: 'per-host' } }, { match: { prefix: '/' }, route: { cluster: 'plain' } }])],
    listeners: [httpListener('l', 'r')],
  });
  const seen = async (path: string) => (JSON.parse((await get(h.port('l'), path)).body) as Echo).headers;
  const host = await seen('/host');
  assert.equal(host['x-pp-authority'], 'host.example', "the host's TLV wins over added_tlvs");
  assert.equal(host['x-pp-unique-id'], 'from-cluster', 'added_tlvs of other types still go');
  assert.equal((await seen('/'))['x-pp-authority'], 'cluster.example', 'without one, added_tlvs');
});

test('the header data: v1 carries no TLVs; TLVs past the 16-bit length are skipped, later ones still fit; tlv_as_pool_key puts the TLVs in the pool key', () => {
  const conn = (tlvs: { type: number; value: Buffer }[]) => ({ remoteAddress: '192.0.2.1', remotePort: 1000, localAddress: '198.51.100.2', localPort: 443, tls: false, proxyProtocolTlvs: tlvs });
  const settings = (version: 1 | 2, tlvAsPoolKey = false) => ({ version, passThrough: 'all' as const, addedTlvs: [{ type: 0xe0, value: Buffer.alloc(40_000) }], tlvAsPoolKey });
  const big = { type: 0xe1, value: Buffer.alloc(30_000) };
  const small = { type: 0xe2, value: Buffer.from('s') };
  assert.deepEqual(proxyHeaderFor(settings(1), conn([small])).tlvs, []);
  const v2 = proxyHeaderFor(settings(2), conn([big, small]));
  assert.deepEqual(
    v2.tlvs.map((x) => x.type),
    [0xe0, 0xe2],
    '40003 + 30003 bytes would pass 65535 - 12: the 30000-byte TLV is skipped, the small one still goes',
  );
  assert.ok(encodeProxyHeader(2, v2.addresses!, v2.tlvs).length <= 16 + 0xffff);
  const plain = proxyPoolKey(settings(2), proxyHeaderFor(settings(2), conn([small])));
  assert.equal(plain, proxyPoolKey(settings(2), proxyHeaderFor(settings(2), conn([{ type: 0xe2, value: Buffer.from('t') }]))), 'addresses only, as Envoy');
  const keyed = (v: string) => proxyPoolKey(settings(2, true), proxyHeaderFor(settings(2, true), conn([{ type: 0xe2, value: Buffer.from(v) }])));
  assert.notEqual(keyed('s'), keyed('t'));
  assert.equal(proxyPoolKey(settings(2), proxyHeaderFor(settings(2), undefined)), '', 'no downstream: the pool every check and own request shares');
});

test('a type repeated in one header: its first value is the one rules store (as Envoy), every copy passes through', () => {
  const issues = new Issues();
  const c = readProxyProtocolFilter(new Reader({ rules: [{ tlv_type: 0xe0, on_tlv_present: { key: 'toString' } }], pass_through_tlvs: {} }, 'typed_config', issues));
  const header = encodeProxyHeader(2, { sourceAddress: '192.0.2.1', sourcePort: 1, destinationAddress: '192.0.2.2', destinationPort: 2 }, [
    { type: 0xe0, value: Buffer.from('first') },
    { type: 0xe0, value: Buffer.from('second') },
  ]);
  const v = proxyProtocolVerdict(header, c, proxyProtocolStats(new Stats(), c));
  assert.ok(v.accept);
  assert.deepEqual(v.tlvs?.dynamicMetadata, { 'envoy.filters.listener.proxy_protocol': { toString: 'first' } });
  assert.equal(v.tlvs?.passThrough.length, 2);
});

test('network RBAC matches the metadata rules set: a DENY policy on one tenant closes its connections only', async (t) => {
  const echo = await startUpstream('echo');
  const h = await startTestRuntime(t, [echo]);
  const [ok, blocked] = [await freePort(), await freePort()];
  const tenant = { metadata: { filter: 'envoy.filters.listener.proxy_protocol', path: [{ key: 'tenant' }], value: { string_match: { exact: 'blocked' } } } };
  await configure(h, {
    clusters: [staticCluster('echo', [echo.port])],
    listeners: [
      {
        name: 'pp',
        address: addr(0),
        listener_filters: [proxyProtocolFilter({ rules: [{ tlv_type: PP2_TYPE_UNIQUE_ID, on_tlv_present: { key: 'tenant' } }] })],
        filter_chains: [
          {
            filters: [
              { name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC_TYPE, stat_prefix: 'tcp.', rules: { action: 'DENY', policies: { tenant: { permissions: [{ any: true }], principals: [tenant] } } } } },
              { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'pp', cluster: 'echo' } },
            ],
          },
        ],
      },
    ],
  });
  await startHaproxy(t, sender('send_ok', ok, 'fine', h.port('pp')) + sender('send_blocked', blocked, 'blocked', h.port('pp')), [ok, blocked]);
  assert.equal((await get(ok)).status, 200);
  assert.equal((await get(blocked)).status, 502, 'HAProxy answers 502 when the proxy closes the connection');
  assert.equal(h.rt.stats.counter('tcp.rbac.denied').value, 1);
  assert.equal(h.rt.stats.counter('tcp.rbac.allowed').value, 1);
});
