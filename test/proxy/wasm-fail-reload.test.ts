// Wasm failure_policy in `rig proxy -c`: a plugin that traps on a request with header x-crash.
// FAIL_RELOAD answers the crashing request 503 and serves a later stream, past the backoff, from a
// new VM (its request count starts again), counting wasm.<name>.vm_reload_success; within the
// backoff a stream fails closed (vm_reload_backoff). FAIL_CLOSED stays 503, FAIL_OPEN goes on
// without the plugin. The network filter reloads the same way. Configs with both fail_open and
// failure_policy, or an unknown policy, are refused as Envoy refuses them; settings without effect
// (reload_config without FAIL_RELOAD, max_interval) are warned about by path.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { LISTENER_TYPE } from '../../src/envoy/index.ts';
import { startTcpEcho } from '../helpers/listen.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { HCM, httpListener, ROUTER, routeConfig, startTestRuntime, startUpstream } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const WASM_NETWORK = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

/** The VM's request count as two digits at 4000. */
const COUNT_DIGITS = `
    (i32.store8 (i32.const 4000) (i32.add (i32.const 48) (i32.div_u (global.get $n) (i32.const 10))))
    (i32.store8 (i32.const 4001) (i32.add (i32.const 48) (i32.rem_u (global.get $n) (i32.const 10))))`;

/** Counts requests (per VM); traps on one with header x-crash; adds response header x-count: the count. */
const crashPlugin: PluginSource = {
  strings: { crash: 'x-crash', count: 'x-count' },
  imports: ['proxy_get_header_map_value', 'proxy_add_header_map_value'],
  body: `
  (global $n (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 0) (i32.const $crash$) (i32.const #crash#) (i32.const 16) (i32.const 20)))
      (then unreachable))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    ${COUNT_DIGITS}
    (drop (call $proxy_add_header_map_value (i32.const 2) (i32.const $count$) (i32.const #count#) (i32.const 4000) (i32.const 2)))
    (i32.const 0))`,
};

/** Network: counts connections' first bytes (per VM); traps when they start with "x", else puts the count before them. */
const crashNetworkPlugin: PluginSource = {
  imports: ['proxy_get_buffer_bytes', 'proxy_set_buffer_bytes'],
  body: `
  (global $n (mut i32) (i32.const 0))
  (func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_downstream_data") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (drop (call $proxy_get_buffer_bytes (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 20)))
    (if (i32.eq (i32.load8_u (i32.load (i32.const 16))) (i32.const 120)) (then unreachable))
    ${COUNT_DIGITS}
    (drop (call $proxy_set_buffer_bytes (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 4000) (i32.const 2)))
    (i32.const 0))`,
};

const address = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });

function pluginConfig(name: string, file: string, policy: object) {
  return { name, root_id: name, vm_config: { vm_id: name, runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: file } } }, ...policy };
}

function httpChain(name: string, file: string, policy: object) {
  const filter = { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: pluginConfig(name, file, policy) } };
  const hcm = { '@type': HCM, stat_prefix: name, http_filters: [filter, ROUTER], route_config: { name, virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } };
  return { name, address: address(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] };
}

function tcpChain(name: string, file: string, policy: object) {
  const filter = { name: 'envoy.filters.network.wasm', typed_config: { '@type': WASM_NETWORK, config: pluginConfig(name, file, policy) } };
  return { name, address: address(0), filter_chains: [{ filters: [filter, { name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: 'echo' } }] }] };
}

const reload = (baseInterval: string) => ({ failure_policy: 'FAIL_RELOAD', reload_config: { backoff: { base_interval: baseInterval } } });

function cluster(name: string, port: number) {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: address(port) } }] }] } };
}

async function get(port: number, crash = false): Promise<{ status: number; count: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: crash ? { 'x-crash': '1' } : {} });
  await res.arrayBuffer();
  return { status: res.status, count: res.headers.get('x-count') };
}

/** Sends `data` on a new connection through the listener; what came back before the connection closed. */
function send(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(data));
    let got = '';
    c.on('data', (d) => {
      got += d;
      if (got.endsWith(data)) c.end();
    });
    c.on('error', () => undefined);
    c.on('close', () => resolve(got));
  });
}

test('wasm failure_policy: FAIL_RELOAD serves later streams from a new VM past the backoff (HTTP and network), FAIL_CLOSED stays 503, FAIL_OPEN goes on', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const echoPort = await startTcpEcho(t);
  const dir = tempDir(t, 'wasm-fail-reload-');
  const http = await writePlugin(dir, 'crash', crashPlugin);
  const tcp = await writePlugin(dir, 'crash-net', crashNetworkPlugin);
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: {
      listeners: [
        httpChain('reload', http, reload('0.1s')),
        // An hour's backoff: every stream after the crash is within it.
        httpChain('reload_slow', http, { failure_policy: 'FAIL_RELOAD', reload_config: { backoff: { base_interval: '3600s', max_interval: '7200s' } } }),
        httpChain('closed', http, { failure_policy: 'FAIL_CLOSED', reload_config: { backoff: { base_interval: '1s' } } }),
        httpChain('open', http, { failure_policy: 'FAIL_OPEN' }),
        tcpChain('tcp_reload', tcp, reload('0.1s')),
      ],
      clusters: [cluster('app', app.port), cluster('echo', echoPort)],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners;
  const stat = async (name: string) => Number((await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats`).then((r) => r.text())).match(new RegExp(`^${name.replaceAll('.', '\\.')}: (\\d+)$`, 'm'))?.[1] ?? -1);

  // FAIL_RELOAD: the crash is answered 503; a later stream gets a new VM, whose count starts again.
  assert.deepEqual(await get(port.reload!), { status: 200, count: '01' });
  assert.deepEqual(await get(port.reload!), { status: 200, count: '02' });
  assert.equal((await get(port.reload!, true)).status, 503, 'the crashing request fails closed');
  const served = await waitFor('a stream served by a reloaded VM', async () => {
    const r = await get(port.reload!);
    if (r.status !== 200) assert.equal(r.status, 503, 'within the backoff a stream fails closed');
    return r.status === 200 ? r : undefined;
  });
  assert.equal(served.count, '01', 'a new VM: its request count started again');
  assert.deepEqual(await get(port.reload!), { status: 200, count: '02' });
  assert.equal(await stat('wasm.reload.vm_reload_success'), 1);
  assert.equal(await stat('wasm.reload.vm_reload_failure'), 0);

  // Within the backoff (an hour): fail closed, counted, no reload.
  assert.equal((await get(port.reload_slow!)).status, 200);
  assert.equal((await get(port.reload_slow!, true)).status, 503);
  assert.equal((await get(port.reload_slow!)).status, 503);
  assert.equal((await get(port.reload_slow!)).status, 503);
  assert.equal(await stat('wasm.reload_slow.vm_reload_backoff'), 2);
  assert.equal(await stat('wasm.reload_slow.vm_reload_success'), 0);

  // FAIL_CLOSED: 503 for good (also after the reload above had its chance); FAIL_OPEN: on without the plugin.
  assert.equal((await get(port.closed!)).status, 200);
  assert.equal((await get(port.closed!, true)).status, 503);
  assert.equal((await get(port.closed!)).status, 503);
  assert.deepEqual(await get(port.open!, true), { status: 200, count: null });
  assert.deepEqual(await get(port.open!), { status: 200, count: null }, 'FAIL_OPEN: the failed VM is left out');
  assert.equal(await stat('wasm.closed.vm_reload_backoff'), -1, 'no reload counters without FAIL_RELOAD');

  // The network filter: a crashed connection is closed; a later one runs on a new VM.
  assert.equal(await send(port.tcp_reload!, 'hi'), '01hi');
  assert.equal(await send(port.tcp_reload!, 'x'), '', 'the crashing connection is closed');
  const relayed = await waitFor('a connection served by a reloaded VM', async () => {
    const got = await send(port.tcp_reload!, 'hi');
    return got === '' ? undefined : got;
  });
  assert.equal(relayed, '01hi', 'a new VM: its count started again');
  assert.equal(await stat('wasm.tcp_reload.vm_reload_success'), 1);

  assert.match(proxy.log(), /reload_slow.*max_interval.*has no effect/);
  assert.match(proxy.log(), /closed.*reload_config.*has no effect unless failure_policy is FAIL_RELOAD/);
});

test('wasm failure_policy: fail_open with a failure_policy, an unknown policy and a base_interval under 1ms are refused', async (t) => {
  const h = await startTestRuntime(t);
  const dir = tempDir(t, 'wasm-fail-reload-');
  const file = await writePlugin(dir, 'crash', crashPlugin);
  const errors = (policy: object) => h.apply(LISTENER_TYPE, [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [{ name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: pluginConfig('p', file, policy) } }, ROUTER] })]).join('\n');
  assert.match(errors({ fail_open: true, failure_policy: 'FAIL_RELOAD' }), /only one of fail_open or failure_policy can be set/);
  assert.match(errors({ failure_policy: 'FAIL_SOMETIMES' }), /failure_policy: unknown value "FAIL_SOMETIMES"/);
  assert.match(errors(reload('0s')), /base_interval.*must be at least 1ms/);
  assert.equal(errors({ failure_policy: 3 }), '', 'the enum by number');
  assert.equal(errors({ fail_open: true }), '');
  assert.equal(errors(reload('1s')), '');
});
