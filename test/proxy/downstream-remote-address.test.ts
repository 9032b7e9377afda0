// Envoy's downstream remote address: the HCM's trusted client address after x-forwarded-for
// processing (use_remote_address, xff_num_trusted_hops), which access logs
// (%DOWNSTREAM_REMOTE_ADDRESS%, port 0 for an address taken from XFF), header formatters, CEL
// source.address and RBAC remote_ip read, while %DOWNSTREAM_DIRECT_REMOTE_ADDRESS% and RBAC
// direct_remote_ip read the connection's peer. With use_remote_address the proxy appends the peer
// to XFF, its own address (Envoy's LocalInfo) for a loopback peer. Real sockets: the in-process
// proxy runtime, an upstream echoing what it got, access logs in files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_ACCESS_LOG_TYPE, HTTP_RBAC_TYPE } from '../../src/envoy/index.ts';
import { localAddress } from '../../src/proxy/local-address.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';
import { configure, httpListener, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster, type Echo } from './harness.ts';

const FORMAT =
  '%DOWNSTREAM_REMOTE_ADDRESS%|%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%|%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%|%DOWNSTREAM_REMOTE_PORT%|%CEL(source.address)%|%RESPONSE_CODE%\n';

interface Sent {
  status: number;
  echo: Echo | undefined;
  localPort: number;
}

/** One request over a fresh connection; the client's local port is the peer port the proxy sees. */
function send(port: number, headers: http.OutgoingHttpHeaders = {}): Promise<Sent> {
  return new Promise((resolve, reject) => {
    let localPort = 0;
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, echo: res.statusCode === 200 ? (JSON.parse(body) as Echo) : undefined, localPort }));
    });
    req.on('socket', (s) => s.once('connect', () => (localPort = s.localPort ?? 0)));
    req.on('error', reject);
    req.end();
  });
}

const cidr = (prefix: string, len: number) => ({ address_prefix: prefix, prefix_len: len });

function rbacFilter(principal: EnvoyJson): EnvoyJson {
  return { name: 'envoy.filters.http.rbac', typed_config: { '@type': HTTP_RBAC_TYPE, rules: { action: 'ALLOW', policies: { p: { permissions: [{ any: true }], principals: [principal] } } } } };
}

async function setup(t: test.TestContext, listeners: { name: string; hcm?: EnvoyJson; principal?: EnvoyJson }[]) {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const dir = tempDir(t, 'rig-remote-address-');
  const route = routeConfig('r', [
    {
      match: { prefix: '/' },
      route: { cluster: 'app' },
      request_headers_to_add: [
        { header: { key: 'x-remote', value: '%DOWNSTREAM_REMOTE_ADDRESS%' } },
        { header: { key: 'x-direct', value: '%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%' } },
      ],
    },
  ]);
  await configure(h, {
    clusters: [staticCluster('app', [app.port])],
    listeners: listeners.map((l) =>
      httpListener(l.name, route, {
        http_filters: [...(l.principal ? [rbacFilter(l.principal)] : []), ROUTER],
        access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: path.join(dir, `${l.name}.log`), log_format: { text_format_source: { inline_string: FORMAT } } } }],
        ...l.hcm,
      }),
    ),
  });
  const logged = new Map<string, number>();
  /** The access log line of the listener's next request, split at "|". */
  const lastLog = async (name: string): Promise<string[]> => {
    const file = path.join(dir, `${name}.log`);
    const want = (logged.get(name) ?? 0) + 1;
    logged.set(name, want);
    const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);
    await until(`line ${want} of ${name}.log`, () => lines().length >= want);
    return lines()[want - 1].split('|');
  };
  return { h, app, port: (name: string) => h.port(name), lastLog };
}

test('use_remote_address false: the XFF address is the downstream remote address (port 0), the peer the direct one; RBAC remote_ip vs direct_remote_ip', async (t) => {
  const s = await setup(t, [
    { name: 'sidecar', hcm: { use_remote_address: false } },
    { name: 'remote_ip', principal: { remote_ip: cidr('203.0.113.0', 24) } },
    { name: 'direct_ip', principal: { direct_remote_ip: cidr('203.0.113.0', 24) } },
    { name: 'direct_lo', principal: { direct_remote_ip: cidr('127.0.0.0', 8) } },
  ]);

  let r = await send(s.port('sidecar'), { 'x-forwarded-for': '203.0.113.7' });
  assert.equal(r.status, 200);
  assert.deepEqual(await s.lastLog('sidecar'), ['203.0.113.7:0', `127.0.0.1:${r.localPort}`, '203.0.113.7', '127.0.0.1', '0', '203.0.113.7', '200']);
  assert.equal(r.echo!.headers['x-forwarded-for'], '203.0.113.7', 'XFF passes unchanged without use_remote_address');
  assert.equal(r.echo!.headers['x-remote'], '203.0.113.7:0', 'header formatters see the same address');
  assert.equal(r.echo!.headers['x-direct'], '127.0.0.1');

  // IPv6 from XFF prints in brackets; an entry that is not an IP leaves the peer.
  r = await send(s.port('sidecar'), { 'x-forwarded-for': '198.51.100.1, 2001:db8::7' });
  assert.deepEqual((await s.lastLog('sidecar')).slice(0, 3), ['[2001:db8::7]:0', `127.0.0.1:${r.localPort}`, '2001:db8::7']);
  r = await send(s.port('sidecar'), { 'x-forwarded-for': 'unknown' });
  assert.deepEqual((await s.lastLog('sidecar')).slice(0, 2), [`127.0.0.1:${r.localPort}`, `127.0.0.1:${r.localPort}`]);
  r = await send(s.port('sidecar'));
  assert.deepEqual((await s.lastLog('sidecar')).slice(0, 5), [`127.0.0.1:${r.localPort}`, `127.0.0.1:${r.localPort}`, '127.0.0.1', '127.0.0.1', String(r.localPort)]);

  const xff = { 'x-forwarded-for': '203.0.113.7' };
  assert.equal((await send(s.port('remote_ip'), xff)).status, 200, 'remote_ip matches the address from XFF');
  assert.equal((await send(s.port('remote_ip'))).status, 403, 'without XFF the remote address is the peer');
  assert.equal((await send(s.port('remote_ip'), { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' })).status, 403, 'the rightmost address, not the first');
  assert.equal((await send(s.port('direct_ip'), xff)).status, 403, 'direct_remote_ip is the peer, whatever XFF says');
  assert.equal((await send(s.port('direct_lo'), xff)).status, 200);
});

test('xff_num_trusted_hops 1: without use_remote_address the 2nd address from the right, with it the 1st', async (t) => {
  const s = await setup(t, [
    { name: 'hop', hcm: { xff_num_trusted_hops: 1 }, principal: { remote_ip: cidr('198.51.100.0', 24) } },
    { name: 'hop_log', hcm: { xff_num_trusted_hops: 1 } },
    { name: 'edge_hop', hcm: { use_remote_address: true, xff_num_trusted_hops: 1 } },
  ]);
  const two = { 'x-forwarded-for': '198.51.100.9, 203.0.113.7' };
  assert.equal((await send(s.port('hop'), two)).status, 200);
  assert.equal((await send(s.port('hop'), { 'x-forwarded-for': '203.0.113.7, 198.51.100.9' })).status, 403);

  let r = await send(s.port('hop_log'), two);
  assert.deepEqual((await s.lastLog('hop_log')).slice(0, 2), ['198.51.100.9:0', `127.0.0.1:${r.localPort}`]);
  // Fewer than N+1 entries: the peer.
  r = await send(s.port('hop_log'), { 'x-forwarded-for': '203.0.113.7' });
  assert.equal((await s.lastLog('hop_log'))[0], `127.0.0.1:${r.localPort}`);

  // Envoy's example 3: the trusted client address is the last XFF entry before the append.
  r = await send(s.port('edge_hop'), two);
  assert.equal((await s.lastLog('edge_hop'))[0], '203.0.113.7:0');
  assert.equal(r.echo!.headers['x-envoy-external-address'], '203.0.113.7');
  assert.equal(r.echo!.headers['x-forwarded-for'], `198.51.100.9, 203.0.113.7,${localAddress()}`);
  // A trusted hop may tell the scheme; with no trusted hop it is overwritten (test/proxy/header-sanitizing.test.ts).
  r = await send(s.port('edge_hop'), { ...two, 'x-forwarded-proto': 'https' });
  assert.equal(r.echo!.headers['x-forwarded-proto'], 'https');
});

test('use_remote_address true, loopback peer: XFF ends with the proxy address (LocalInfo), the remote address is the peer', async (t) => {
  const s = await setup(t, [
    { name: 'edge', hcm: { use_remote_address: true } },
    { name: 'edge_peer', hcm: { use_remote_address: true }, principal: { remote_ip: cidr('127.0.0.1', 32) } },
    { name: 'edge_xff', hcm: { use_remote_address: true }, principal: { remote_ip: cidr('203.0.113.0', 24) } },
    { name: 'edge_skip', hcm: { use_remote_address: true, skip_xff_append: true } },
  ]);
  const xff = { 'x-forwarded-for': '203.0.113.7' };
  let r = await send(s.port('edge'), xff);
  assert.equal(r.echo!.headers['x-forwarded-for'], `203.0.113.7,${localAddress()}`);
  assert.notEqual(localAddress(), '', 'LocalInfo has an address');
  assert.deepEqual((await s.lastLog('edge')).slice(0, 2), [`127.0.0.1:${r.localPort}`, `127.0.0.1:${r.localPort}`]);
  assert.equal(r.echo!.headers['x-envoy-external-address'], '127.0.0.1');
  r = await send(s.port('edge'));
  assert.equal(r.echo!.headers['x-forwarded-for'], localAddress());
  assert.equal(r.echo!.headers['x-envoy-internal'], 'true', 'a loopback peer without XFF is internal');

  assert.equal((await send(s.port('edge_peer'), xff)).status, 200, 'remote_ip is the peer with use_remote_address');
  assert.equal((await send(s.port('edge_xff'), xff)).status, 403, 'a client-supplied XFF is not trusted');

  // skip_xff_append: XFF untouched, and an XFF that came in still makes the request external.
  r = await send(s.port('edge_skip'), { 'x-forwarded-for': '10.0.0.1' });
  assert.equal(r.echo!.headers['x-forwarded-for'], '10.0.0.1');
  assert.equal(r.echo!.headers['x-envoy-internal'], undefined);
});

test('local rate limit remote_address descriptors use the address from XFF (Envoy: "the trusted address from x-forwarded-for")', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const on = { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: 'rl.enabled' };
  const lrl = {
    name: 'envoy.filters.http.local_ratelimit',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
      stat_prefix: 'rl',
      filter_enabled: on,
      filter_enforced: on,
      token_bucket: { max_tokens: 1000, fill_interval: '3600s' },
      descriptors: [
        { entries: [{ key: 'remote_address', value: '203.0.113.7' }], token_bucket: { max_tokens: 1, fill_interval: '3600s' } },
        { entries: [{ key: 'masked_remote_address', value: '198.51.100.0/24' }], token_bucket: { max_tokens: 1, fill_interval: '3600s' } },
      ],
    },
  };
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app', rate_limits: [{ actions: [{ remote_address: {} }] }, { actions: [{ masked_remote_address: { v4_prefix_mask_len: 24 } }] }] } }]);
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [httpListener('l', route, { http_filters: [lrl, ROUTER] })] });
  const as = async (xff: string) => (await send(h.port('l'), { 'x-forwarded-for': xff })).status;
  assert.deepEqual([await as('203.0.113.7'), await as('203.0.113.7')], [200, 429]);
  assert.deepEqual([await as('198.51.100.1'), await as('198.51.100.2')], [200, 429], 'the masked address from XFF');
  assert.deepEqual([await as('203.0.113.8'), await as('203.0.113.8')], [200, 200], 'another client: the default bucket');
});
