// envoy.filters.http.rbac and envoy.filters.network.rbac fed Envoy config directly: shadow rules,
// LOG, engine results in dynamic metadata, stats, and config errors that NACK with a field path.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HTTP_RBAC_TYPE, NETWORK_RBAC_TYPE, TCP_PROXY_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { addr, configure, HCM, LISTENER_TYPE, request, ROUTER, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';

function rbacListener(name: string, rbac: EnvoyJson): EnvoyJson {
  return {
    name,
    address: addr(0),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), http_filters: [{ name: 'envoy.filters.http.rbac', typed_config: { '@type': HTTP_RBAC_TYPE, ...rbac } }, ROUTER] },
          },
        ],
      },
    ],
  };
}

const ADMIN_POLICY = { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ any: true }] };

test('HTTP RBAC: shadow rules only count, enforced rules decide; engine results in dynamic metadata', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  await configure(h, {
    clusters: [staticCluster('app', [app.port])],
    listeners: [
      rbacListener('l', {
        rules: { action: 'DENY', policies: { 'deny-put': { permissions: [{ header: { name: ':method', string_match: { exact: 'PUT' } } }], principals: [{ not_id: { direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } } }] } } },
        shadow_rules: { action: 'DENY', policies: { 'shadow-admin': ADMIN_POLICY } },
        shadow_rules_stat_prefix: 'dry_',
      }),
    ],
  });
  const port = h.port('l');
  assert.equal((await request(port, { path: '/admin/x' })).status, 200, 'a shadow DENY does not deny');
  const put = await request(port, { method: 'PUT' });
  assert.equal(put.status, 403);
  assert.equal(put.body, 'RBAC: access denied');
  const stat = (n: string) => h.rt.stats.all().find((s) => s.name === n)?.value;
  // Envoy's namespace with a shadow rules prefix: <prefix>rbac.<shadow_rules_stat_prefix>. (a dot after the prefix).
  assert.equal(stat('http.l.rbac.dry_.shadow_denied'), 1);
  assert.equal(stat('http.l.rbac.dry_.shadow_allowed'), 1);
  assert.equal(stat('http.l.rbac.allowed'), 1);
  assert.equal(stat('http.l.rbac.denied'), 1);
  const md = h.streams.map((s) => s.filterState?.['envoy.filters.http.rbac']);
  assert.deepEqual(md[0], { dry_shadow_effective_policy_id: 'shadow-admin', dry_shadow_engine_result: 'denied', enforced_engine_result: 'allowed' });
  assert.deepEqual(md[1], { dry_shadow_engine_result: 'allowed', enforced_effective_policy_id: 'deny-put', enforced_engine_result: 'denied' });
  assert.equal(h.streams[1].responseCodeDetails, 'rbac_access_denied_matched_policy[deny-put]');
});

test('RBAC config errors are refused with the field path and the previous config is kept', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [rbacListener('l', { rules: { policies: { all: { permissions: [{ any: true }], principals: [{ any: true }] } } } })] });
  const bad: [EnvoyJson, RegExp][] = [
    [{ rules: { policies: { p: { permissions: [{ any: true }], principals: [{ filter_state: { key: 'k', string_match: { exact: 'v' } } }] } } } }, /principals\[0\].filter_state: RBAC principal "filter_state" is not supported/],
    [{ rules: { policies: { p: { permissions: [{ any: true }], principals: [{ any: true }], condition: { const_expr: { bool_value: true } } } } } }, /CEL conditions are not supported/],
    [{ rules: { action: 'MAYBE', policies: {} } }, /rules.action: .*"MAYBE"/],
    [{ rules: { policies: { p: { permissions: [], principals: [{ any: true }] } } } }, /at least one permission/],
    [{ rules: { policies: { p: { permissions: [{ destination_ip: { address_prefix: 'nope', prefix_len: 8 } }], principals: [{ any: true }] } } } }, /"nope" is not an IP address/],
    [{ matcher: {} }, /matcher API.*not supported/],
    [{ rules: { policies: { p: { permissions: [{ uri_template: { name: 'u', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig', path_template: '/a/**/b/*' } } }], principals: [{ any: true }] } } } }, /permissions\[0\].uri_template.typed_config.path_template: .*"\*\*" must be the last operator/],
  ];
  for (const [cfg, msg] of bad) {
    const errs = h.apply(LISTENER_TYPE, [rbacListener('l', cfg)]);
    assert.match(errs.join('\n'), msg);
  }
  assert.equal((await request(h.port('l'))).status, 200, 'the last good config still serves');
});

test('network RBAC: a denied connection is closed before tcp_proxy, with stats', async (t) => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });
  const listener = (prefixLen: number): EnvoyJson => ({
    name: 'tcp',
    address: addr(0),
    filter_chains: [
      {
        filters: [
          { name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC_TYPE, stat_prefix: 'tcp.', rules: { policies: { lo: { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: prefixLen } }] } } } } },
          { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'echo', cluster: 'echo' } },
        ],
      },
    ],
  });
  const send = () =>
    new Promise<string>((resolve) => {
      const s = net.connect(h.port('tcp'), '127.0.0.1', () => s.write('hi'));
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString();
        s.end();
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve(got || 'closed'));
    });
  await configure(h, { clusters: [staticCluster('echo', [(echo.address() as AddressInfo).port])], listeners: [listener(8)] });
  assert.equal(await send(), 'hi');
  await configure(h, { listeners: [listener(32)] });
  // 127.0.0.0/32 does not contain 127.0.0.1: the ALLOW engine denies.
  assert.equal(await send(), 'closed');
  const stat = (n: string) => h.rt.stats.all().find((s) => s.name === n)?.value;
  assert.equal(stat('tcp.rbac.allowed'), 1);
  assert.equal(stat('tcp.rbac.denied'), 1);
  assert.match(h.apply(LISTENER_TYPE, [{ ...listener(8), filter_chains: [{ filters: [{ name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC_TYPE, rules: {} } }, { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'e', cluster: 'echo' } }] }] }]).join('\n'), /needs a stat_prefix/);
});
