// Which run-time failures fail a Wasm VM, as Envoy decides it (FAIL_RELOAD reloads only a VM in the
// RuntimeError fail state, PluginConfig::maybeReloadHandleIfNeeded): a trap does (here the
// unreachable the SDKs run after proc_exit when they abort); proc_exit alone does not (Envoy's host
// only logs it, Context::error) nor does a host function's error (it answers with an error code):
// the stream goes on through the plugin, on the same VM, and nothing is reloaded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { CLUSTER_TYPE, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';

/**
 * Counts requests (per VM) into response header x-count. x-exit: proc_exit(3), then goes on;
 * x-abort: proc_exit(3), then unreachable (an SDK's abort); x-bad-write: fd_write with its iovs out of
 * memory (the host's error), then goes on.
 */
const plugin: PluginSource = {
  strings: { exit: 'x-exit', abort: 'x-abort', badWrite: 'x-bad-write', count: 'x-count' },
  imports: ['proxy_get_header_map_value', 'proxy_add_header_map_value', 'proc_exit', 'fd_write'],
  body: `
  (global $n (mut i32) (i32.const 0))
  (func $has (param $p i32) (param $len i32) (result i32)
    (i32.eqz (call $proxy_get_header_map_value (i32.const 0) (local.get $p) (local.get $len) (i32.const 16) (i32.const 20))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (if (call $has (i32.const $exit$) (i32.const #exit#)) (then (call $proc_exit (i32.const 3))))
    (if (call $has (i32.const $abort$) (i32.const #abort#)) (then (call $proc_exit (i32.const 3)) unreachable))
    (if (call $has (i32.const $badWrite$) (i32.const #badWrite#)) (then (drop (call $fd_write (i32.const 1) (i32.const -16) (i32.const 1) (i32.const 24)))))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (i32.store8 (i32.const 4000) (i32.add (i32.const 48) (i32.div_u (global.get $n) (i32.const 10))))
    (i32.store8 (i32.const 4001) (i32.add (i32.const 48) (i32.rem_u (global.get $n) (i32.const 10))))
    (drop (call $proxy_add_header_map_value (i32.const 2) (i32.const $count$) (i32.const #count#) (i32.const 4000) (i32.const 2)))
    (i32.const 0))`,
};

test('wasm FAIL_RELOAD: proc_exit and a host function error leave the VM running (no reload); a trap after proc_exit fails it and a later stream gets a new VM', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const file = await writePlugin(tempDir(t, 'wasm-fail-state-'), 'exit', plugin);
  const config = { name: 'p', root_id: 'p', vm_config: { vm_id: 'p', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: file } } }, failure_policy: 'FAIL_RELOAD', reload_config: { backoff: { base_interval: '0.05s' } } };
  const wasm = { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config } };
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [app.port])]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [httpListener('in', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [wasm, ROUTER] })]), []);
  await h.rt.settled();
  const get = async (header?: string) => {
    const r = await request(h.port('in'), { headers: header ? { [header]: '1' } : {} });
    return { status: r.status, count: r.headers['x-count'] };
  };
  const stat = (s: string) => h.rt.stats.counter(`wasm.p.${s}`).value;

  assert.deepEqual(await get(), { status: 200, count: '01' });
  assert.deepEqual(await get('x-exit'), { status: 200, count: '02' }, 'proc_exit returned and the plugin went on');
  assert.deepEqual(await get('x-bad-write'), { status: 200, count: '03' }, 'fd_write answered an error and the plugin went on');
  assert.deepEqual(await get(), { status: 200, count: '04' }, 'the same VM');
  assert.deepEqual([stat('vm_reload_success'), stat('vm_reload_failure'), stat('vm_reload_backoff')], [0, 0, 0], 'nothing to reload');

  assert.equal((await get('x-abort')).status, 503, 'a trap (after proc_exit) fails the VM: fail closed');
  const served = await waitFor('a stream served by a reloaded VM', async () => {
    const r = await get();
    return r.status === 200 ? r : undefined;
  });
  assert.equal(served.count, '01', 'a new VM');
  assert.equal(stat('vm_reload_success'), 1);
});
