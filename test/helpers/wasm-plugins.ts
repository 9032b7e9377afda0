// Proxy-Wasm test plugins (ABI 0.2.1) written in WebAssembly text and built with wabt at test time:
// a bump allocator, the callbacks every plugin exports, and each plugin's own callbacks. Strings the
// plugins use sit in a data segment laid out here (their offsets and sizes spliced into the text).
// As in Envoy, HTTP and gRPC call callbacks run in the root context: a plugin sets the effective
// context back to the stream it called for (proxy_set_effective_context), as the SDKs do.
import fs from 'node:fs';
import path from 'node:path';
import wabtInit from 'wabt';

const HOST: Record<string, string> = {
  proxy_log: '(param i32 i32 i32) (result i32)',
  proxy_get_buffer_bytes: '(param i32 i32 i32 i32 i32) (result i32)',
  proxy_get_header_map_value: '(param i32 i32 i32 i32 i32) (result i32)',
  proxy_add_header_map_value: '(param i32 i32 i32 i32 i32) (result i32)',
  proxy_replace_header_map_value: '(param i32 i32 i32 i32 i32) (result i32)',
  proxy_get_property: '(param i32 i32 i32 i32) (result i32)',
  proxy_set_property: '(param i32 i32 i32 i32) (result i32)',
  proxy_send_local_response: '(param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)',
  proxy_http_call: '(param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)',
  proxy_continue_stream: '(param i32) (result i32)',
  proxy_define_metric: '(param i32 i32 i32 i32) (result i32)',
  proxy_increment_metric: '(param i32 i64) (result i32)',
  proxy_get_shared_data: '(param i32 i32 i32 i32 i32) (result i32)',
  proxy_set_shared_data: '(param i32 i32 i32 i32 i32) (result i32)',
  proxy_set_tick_period_milliseconds: '(param i32) (result i32)',
  proxy_call_foreign_function: '(param i32 i32 i32 i32 i32 i32) (result i32)',
  proxy_get_configuration: '(param i32 i32) (result i32)',
  proxy_set_buffer_bytes: '(param i32 i32 i32 i32 i32) (result i32)',
  proxy_remove_header_map_value: '(param i32 i32 i32) (result i32)',
  proxy_register_shared_queue: '(param i32 i32 i32) (result i32)',
  proxy_resolve_shared_queue: '(param i32 i32 i32 i32 i32) (result i32)',
  proxy_enqueue_shared_queue: '(param i32 i32 i32) (result i32)',
  proxy_dequeue_shared_queue: '(param i32 i32 i32) (result i32)',
  proxy_grpc_call: '(param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)',
  proxy_grpc_stream: '(param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)',
  proxy_grpc_send: '(param i32 i32 i32 i32) (result i32)',
  proxy_grpc_cancel: '(param i32) (result i32)',
  proxy_grpc_close: '(param i32) (result i32)',
  proxy_get_status: '(param i32 i32 i32) (result i32)',
  proxy_close_stream: '(param i32) (result i32)',
  proxy_set_effective_context: '(param i32) (result i32)',
};

/** WASI functions a plugin may import (from wasi_snapshot_preview1). */
const WASI: Record<string, string> = {
  proc_exit: '(param i32)',
  fd_write: '(param i32 i32 i32 i32) (result i32)',
};

/** Serialized header pairs (the ABI's map format). */
export function pairs(list: [string, string][]): Buffer {
  const head = Buffer.alloc(4 + list.length * 8);
  head.writeUInt32LE(list.length, 0);
  const tail: Buffer[] = [];
  list.forEach(([k, v], i) => {
    head.writeUInt32LE(Buffer.byteLength(k), 4 + i * 8);
    head.writeUInt32LE(Buffer.byteLength(v), 8 + i * 8);
    tail.push(Buffer.from(k + '\0' + v + '\0'));
  });
  return Buffer.concat([head, ...tail]);
}

/** A plugin: its strings (name → text or bytes) and its callbacks' text, `$name`/`#name` replaced by each string's offset/size. */
export interface PluginSource {
  strings?: Record<string, string | Buffer>;
  imports: string[];
  /** Extra module fields (functions, globals). */
  body: string;
}

/** Return slots the callbacks use: a pointer at 16, a size at 20, a token/id at 24. */
const DATA_START = 64;

export async function buildPlugin(src: PluginSource): Promise<Buffer> {
  let off = DATA_START;
  const data: string[] = [];
  let body = src.body;
  for (const [name, v] of Object.entries(src.strings ?? {})) {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v);
    data.push(`(data (i32.const ${off}) "${[...b].map((x) => '\\' + x.toString(16).padStart(2, '0')).join('')}")`);
    body = body.replaceAll(`$${name}$`, String(off)).replaceAll(`#${name}#`, String(b.length));
    off += b.length + 8;
  }
  const imports = src.imports.map((n) => (WASI[n] ? `(import "wasi_snapshot_preview1" "${n}" (func $${n} ${WASI[n]}))` : `(import "env" "${n}" (func $${n} ${HOST[n]}))`));
  const text = `(module
  ${imports.join('\n  ')}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  ${data.join('\n  ')}
  ${body}
)`;
  const wabt = await wabtInit();
  const mod = wabt.parseWat('plugin.wat', text);
  try {
    return Buffer.from(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/** Writes the plugin to `dir/name.wasm`; returns its path. */
export async function writePlugin(dir: string, name: string, src: PluginSource): Promise<string> {
  const file = path.join(dir, `${name}.wasm`);
  fs.writeFileSync(file, await buildPlugin(src));
  return file;
}

// === the plugins ===

/**
 * Adds request header x-wasm-path (the request.path property) and x-wasm-unimplemented: yes when
 * proxy_get_configuration (ABI 0.1.0's, not implemented) answers Unimplemented; adds response header
 * x-wasm-config carrying the plugin configuration, read in proxy_on_configure.
 */
export const addHeaderPlugin: PluginSource = {
  strings: { path: 'request\0path', hpath: 'x-wasm-path', hconf: 'x-wasm-config', hunimpl: 'x-wasm-unimplemented', yes: 'yes' },
  imports: ['proxy_get_buffer_bytes', 'proxy_get_property', 'proxy_add_header_map_value', 'proxy_get_configuration'],
  body: `
  (global $confPtr (mut i32) (i32.const 0))
  (global $confLen (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (drop (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (local.get $size) (i32.const 16) (i32.const 20)))
    (global.set $confPtr (i32.load (i32.const 16)))
    (global.set $confLen (i32.load (i32.const 20)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (if (i32.eqz (call $proxy_get_property (i32.const $path$) (i32.const #path#) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $hpath$) (i32.const #hpath#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
    (if (i32.eq (call $proxy_get_configuration (i32.const 16) (i32.const 20)) (i32.const 12))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $hunimpl$) (i32.const #hunimpl#) (i32.const $yes$) (i32.const #yes#)))))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param $ctx i32) (param i32 i32) (result i32)
    (drop (call $proxy_add_header_map_value (i32.const 2) (i32.const $hconf$) (i32.const #hconf#) (global.get $confPtr) (global.get $confLen)))
    (i32.const 0))`,
};

/** Istio's basic auth example's behaviour: no authorization header → 401 with WWW-Authenticate, the upstream not called. */
export const denyPlugin: PluginSource = {
  strings: { auth: 'authorization', body: 'wasm: missing authorization', details: 'wasm_denied', headers: pairs([['www-authenticate', 'Basic realm="rig"']]) },
  imports: ['proxy_get_header_map_value', 'proxy_send_local_response'],
  body: `
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 0) (i32.const $auth$) (i32.const #auth#) (i32.const 16) (i32.const 20)))
      (then (return (i32.const 0))))
    (drop (call $proxy_send_local_response (i32.const 401) (i32.const $details$) (i32.const #details#) (i32.const $body$) (i32.const #body#) (i32.const $headers$) (i32.const #headers#) (i32.const -1)))
    (i32.const 1))`,
};

/**
 * Pauses on request headers, calls cluster "authz" (GET /check), and from the answer's callback
 * adds x-authz-status and x-authz-body to the request, then continues it.
 */
export const httpCallPlugin: PluginSource = {
  strings: {
    cluster: 'authz',
    call: pairs([[':method', 'GET'], [':path', '/check'], [':authority', 'authz.local'], ['x-from', 'wasm']]),
    status: ':status',
    hstatus: 'x-authz-status',
    hbody: 'x-authz-body',
  },
  imports: ['proxy_http_call', 'proxy_get_header_map_value', 'proxy_get_buffer_bytes', 'proxy_add_header_map_value', 'proxy_continue_stream', 'proxy_log', 'proxy_set_effective_context'],
  body: `
  (global $caller (mut i32) (i32.const 0))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (global.set $caller (local.get $ctx))
    (if (call $proxy_http_call (i32.const $cluster$) (i32.const #cluster#) (i32.const $call$) (i32.const #call#) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 2000) (i32.const 24))
      (then (return (i32.const 0))))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param $ctx i32) (param $token i32) (param $nh i32) (param $body i32) (param $nt i32)
    (drop (call $proxy_set_effective_context (global.get $caller)))
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 6) (i32.const $status$) (i32.const #status#) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $hstatus$) (i32.const #hstatus#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
    (if (i32.eqz (call $proxy_get_buffer_bytes (i32.const 4) (i32.const 0) (local.get $body) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $hbody$) (i32.const #hbody#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
    (drop (call $proxy_continue_stream (i32.const 0))))`,
};

/** Counts requests in counter wasmcustom.wasm_test_requests_total (defined in proxy_on_configure). */
export const metricPlugin: PluginSource = {
  strings: { name: 'wasm_test_requests_total' },
  imports: ['proxy_define_metric', 'proxy_increment_metric'],
  body: `
  (global $metric (mut i32) (i32.const 0))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $name$) (i32.const #name#) (i32.const 24)))
    (global.set $metric (i32.load (i32.const 24)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_increment_metric (global.get $metric) (i64.const 1)))
    (i32.const 0))`,
};

/** Traps (unreachable) on request headers. */
export const trapPlugin: PluginSource = {
  imports: [],
  body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    unreachable)`,
};

/**
 * Bodies: the request body, buffered whole (Pause until its end), reaches the upstream with "wasm:"
 * before it; the response head is paused until the body's end, when the body, buffered whole, is
 * replaced by "replaced by wasm" and x-wasm-body-seen added to the head. content-length is removed
 * from both heads, as plugins that change a body must.
 */
export const bodyPlugin: PluginSource = {
  strings: { cl: 'content-length', prefix: 'wasm:', replaced: 'replaced by wasm', seen: 'x-wasm-body-seen', yes: 'yes' },
  imports: ['proxy_set_buffer_bytes', 'proxy_remove_header_map_value', 'proxy_add_header_map_value'],
  body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_remove_header_map_value (i32.const 0) (i32.const $cl$) (i32.const #cl#)))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (i32.eqz (local.get $end)) (then (return (i32.const 1))))
    (drop (call $proxy_set_buffer_bytes (i32.const 0) (i32.const 0) (i32.const 0) (i32.const $prefix$) (i32.const #prefix#)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_remove_header_map_value (i32.const 2) (i32.const $cl$) (i32.const #cl#)))
    (i32.const 1))
  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (i32.eqz (local.get $end)) (then (return (i32.const 1))))
    (drop (call $proxy_set_buffer_bytes (i32.const 1) (i32.const 0) (local.get $size) (i32.const $replaced$) (i32.const #replaced#)))
    (drop (call $proxy_add_header_map_value (i32.const 2) (i32.const $seen$) (i32.const #seen#) (i32.const $yes$) (i32.const #yes#)))
    (i32.const 0))`,
};

/**
 * Host state: on request headers it logs "hello from wasm", adds x-source (source.address),
 * x-node-id (node.id), x-node-workload (node.metadata.WORKLOAD), x-plugin (plugin_name), and
 * x-fs (a value set with proxy_set_property, read back); sets shared data "k" twice with its CAS
 * and adds x-cas: mismatch when a third set with the stale CAS answers CasMismatch. Its root context
 * ticks every 20 ms (counter wasmcustom.wasm_test_ticks) and proxy_on_log counts streams
 * (wasmcustom.wasm_test_logged).
 */
export const hostPlugin: PluginSource = {
  strings: {
    hello: 'hello from wasm',
    src: 'source\0address',
    nodeId: 'node\0id',
    nodeWl: 'node\0metadata\0WORKLOAD',
    plugin: 'plugin_name',
    fsKey: 'my_state',
    fsVal: 'state-value',
    hsrc: 'x-source',
    hnode: 'x-node-id',
    hwl: 'x-node-workload',
    hplugin: 'x-plugin',
    hfs: 'x-fs',
    hcas: 'x-cas',
    mismatch: 'mismatch',
    key: 'k',
    a: 'a',
    b: 'b',
    c: 'c',
    ticks: 'wasm_test_ticks',
    logged: 'wasm_test_logged',
  },
  imports: ['proxy_log', 'proxy_get_property', 'proxy_set_property', 'proxy_add_header_map_value', 'proxy_get_shared_data', 'proxy_set_shared_data', 'proxy_set_tick_period_milliseconds', 'proxy_define_metric', 'proxy_increment_metric'],
  body: `
  (global $ticks (mut i32) (i32.const 0))
  (global $logged (mut i32) (i32.const 0))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $ticks$) (i32.const #ticks#) (i32.const 24)))
    (global.set $ticks (i32.load (i32.const 24)))
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $logged$) (i32.const #logged#) (i32.const 24)))
    (global.set $logged (i32.load (i32.const 24)))
    (drop (call $proxy_set_tick_period_milliseconds (i32.const 20)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $proxy_increment_metric (global.get $ticks) (i64.const 1))))
  (func (export "proxy_on_log") (param i32)
    (drop (call $proxy_increment_metric (global.get $logged) (i64.const 1))))
  (func $prop (param $p i32) (param $n i32) (param $h i32) (param $hn i32)
    (if (i32.eqz (call $proxy_get_property (local.get $p) (local.get $n) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (local.get $h) (local.get $hn) (i32.load (i32.const 16)) (i32.load (i32.const 20)))))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $cas i32)
    (drop (call $proxy_log (i32.const 2) (i32.const $hello$) (i32.const #hello#)))
    (call $prop (i32.const $src$) (i32.const #src#) (i32.const $hsrc$) (i32.const #hsrc#))
    (call $prop (i32.const $nodeId$) (i32.const #nodeId#) (i32.const $hnode$) (i32.const #hnode#))
    (call $prop (i32.const $nodeWl$) (i32.const #nodeWl#) (i32.const $hwl$) (i32.const #hwl#))
    (call $prop (i32.const $plugin$) (i32.const #plugin#) (i32.const $hplugin$) (i32.const #hplugin#))
    (drop (call $proxy_set_property (i32.const $fsKey$) (i32.const #fsKey#) (i32.const $fsVal$) (i32.const #fsVal#)))
    (call $prop (i32.const $fsKey$) (i32.const #fsKey#) (i32.const $hfs$) (i32.const #hfs#))
    (drop (call $proxy_set_shared_data (i32.const $key$) (i32.const #key#) (i32.const $a$) (i32.const #a#) (i32.const 0)))
    (drop (call $proxy_get_shared_data (i32.const $key$) (i32.const #key#) (i32.const 16) (i32.const 20) (i32.const 28)))
    (local.set $cas (i32.load (i32.const 28)))
    (drop (call $proxy_set_shared_data (i32.const $key$) (i32.const #key#) (i32.const $b$) (i32.const #b#) (local.get $cas)))
    (if (i32.eq (call $proxy_set_shared_data (i32.const $key$) (i32.const #key#) (i32.const $c$) (i32.const #c#) (local.get $cas)) (i32.const 8))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $hcas$) (i32.const #hcas#) (i32.const $mismatch$) (i32.const #mismatch#)))))
    (i32.const 0))`,
};

/** Traps (unreachable) on response headers. */
export const responseTrapPlugin: PluginSource = {
  imports: [],
  body: `
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    unreachable)`,
};

/** Traps when the request has x-trap; otherwise pauses on an HTTP call to cluster "slow" (GET /wait). */
export const callOrTrapPlugin: PluginSource = {
  strings: { trap: 'x-trap', cluster: 'slow', call: pairs([[':method', 'GET'], [':path', '/wait'], [':authority', 'slow.local']]) },
  imports: ['proxy_get_header_map_value', 'proxy_http_call', 'proxy_continue_stream', 'proxy_set_effective_context'],
  body: `
  (global $caller (mut i32) (i32.const 0))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $caller (local.get 0))
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 0) (i32.const $trap$) (i32.const #trap#) (i32.const 16) (i32.const 20)))
      (then unreachable))
    (drop (call $proxy_http_call (i32.const $cluster$) (i32.const #cluster#) (i32.const $call$) (i32.const #call#) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 60000) (i32.const 24)))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
    (drop (call $proxy_set_effective_context (global.get $caller)))
    (drop (call $proxy_continue_stream (i32.const 0))))`,
};

/** Counts proxy_on_delete calls in wasmcustom.wasm_test_deleted (with no streams: root contexts). */
export const rootDeletePlugin: PluginSource = {
  strings: { deleted: 'wasm_test_deleted' },
  imports: ['proxy_define_metric', 'proxy_increment_metric'],
  body: `
  (global $metric (mut i32) (i32.const 0))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $deleted$) (i32.const #deleted#) (i32.const 24)))
    (global.set $metric (i32.load (i32.const 24)))
    (i32.const 1))
  (func (export "proxy_on_delete") (param i32)
    (drop (call $proxy_increment_metric (global.get $metric) (i64.const 1))))`,
};

/**
 * Shared queue "q" of vm_id "queue": registered by the root context, each request enqueues an item
 * (the queue found by proxy_resolve_shared_queue), proxy_on_queue_ready dequeues every item and
 * counts them in wasmcustom.wasm_test_dequeued.
 */
export const queuePlugin: PluginSource = {
  strings: { vm: 'queue', q: 'q', item: 'item', dequeued: 'wasm_test_dequeued' },
  imports: ['proxy_register_shared_queue', 'proxy_resolve_shared_queue', 'proxy_enqueue_shared_queue', 'proxy_dequeue_shared_queue', 'proxy_define_metric', 'proxy_increment_metric'],
  body: `
  (global $metric (mut i32) (i32.const 0))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_register_shared_queue (i32.const $q$) (i32.const #q#) (i32.const 24)))
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $dequeued$) (i32.const #dequeued#) (i32.const 28)))
    (global.set $metric (i32.load (i32.const 28)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $proxy_resolve_shared_queue (i32.const $vm$) (i32.const #vm#) (i32.const $q$) (i32.const #q#) (i32.const 32)))
      (then (drop (call $proxy_enqueue_shared_queue (i32.load (i32.const 32)) (i32.const $item$) (i32.const #item#)))))
    (i32.const 0))
  (func (export "proxy_on_queue_ready") (param $root i32) (param $queue i32)
    (block $done
      (loop $next
        (br_if $done (call $proxy_dequeue_shared_queue (local.get $queue) (i32.const 16) (i32.const 20)))
        (drop (call $proxy_increment_metric (global.get $metric) (i64.const 1)))
        (br $next))))`,
};

/**
 * Waiting on the response side. On response headers: with x-deny-now a 403 local response replaces
 * the upstream's; else it calls cluster "authz" and pauses (the head and, while the call is out,
 * the body); the call's callback adds x-authz-status to the held head and continues the response
 * (proxy_continue_stream(Response)), or with x-deny-later on the upstream's head answers 401.
 */
export const responseWaitPlugin: PluginSource = {
  strings: {
    denyNow: 'x-deny-now',
    denyLater: 'x-deny-later',
    cluster: 'authz',
    call: pairs([[':method', 'GET'], [':path', '/check'], [':authority', 'authz.local']]),
    status: ':status',
    hstatus: 'x-authz-status',
    details: 'wasm_response_denied',
    bodyNow: 'denied on response headers',
    bodyLater: 'denied after the call',
    replaced: pairs([['x-wasm-replaced', 'yes']]),
  },
  imports: ['proxy_get_header_map_value', 'proxy_add_header_map_value', 'proxy_send_local_response', 'proxy_http_call', 'proxy_continue_stream', 'proxy_set_effective_context'],
  body: `
  (global $waiting (mut i32) (i32.const 0))
  (global $deny (mut i32) (i32.const 0))
  (global $caller (mut i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (global.set $caller (local.get 0))
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 2) (i32.const $denyNow$) (i32.const #denyNow#) (i32.const 16) (i32.const 20)))
      (then
        (drop (call $proxy_send_local_response (i32.const 403) (i32.const $details$) (i32.const #details#) (i32.const $bodyNow$) (i32.const #bodyNow#) (i32.const $replaced$) (i32.const #replaced#) (i32.const -1)))
        (return (i32.const 1))))
    (global.set $deny (i32.eqz (call $proxy_get_header_map_value (i32.const 2) (i32.const $denyLater$) (i32.const #denyLater#) (i32.const 16) (i32.const 20))))
    (if (call $proxy_http_call (i32.const $cluster$) (i32.const #cluster#) (i32.const $call$) (i32.const #call#) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 24))
      (then (return (i32.const 0))))
    (global.set $waiting (i32.const 1))
    (i32.const 1))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (global.get $waiting))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
    (drop (call $proxy_set_effective_context (global.get $caller)))
    (global.set $waiting (i32.const 0))
    (if (global.get $deny)
      (then
        (drop (call $proxy_send_local_response (i32.const 401) (i32.const $details$) (i32.const #details#) (i32.const $bodyLater$) (i32.const #bodyLater#) (i32.const $replaced$) (i32.const #replaced#) (i32.const -1)))
        (return)))
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 6) (i32.const $status$) (i32.const #status#) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 2) (i32.const $hstatus$) (i32.const #hstatus#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
    (drop (call $proxy_continue_stream (i32.const 1))))`,
};

/**
 * Request trailers: copies x-checksum to x-wasm-checksum and replaces it with "by-wasm", then pauses
 * on an HTTP call to cluster "authz"; its callback adds x-wasm-called: yes and continues the request.
 */
export const requestTrailersPlugin: PluginSource = {
  strings: {
    ck: 'x-checksum',
    wck: 'x-wasm-checksum',
    byWasm: 'by-wasm',
    called: 'x-wasm-called',
    yes: 'yes',
    cluster: 'authz',
    call: pairs([[':method', 'GET'], [':path', '/check'], [':authority', 'authz.local']]),
  },
  imports: ['proxy_get_header_map_value', 'proxy_add_header_map_value', 'proxy_replace_header_map_value', 'proxy_http_call', 'proxy_continue_stream', 'proxy_set_effective_context'],
  body: `
  (global $caller (mut i32) (i32.const 0))
  (func (export "proxy_on_request_trailers") (param i32 i32) (result i32)
    (global.set $caller (local.get 0))
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 1) (i32.const $ck$) (i32.const #ck#) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 1) (i32.const $wck$) (i32.const #wck#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
    (drop (call $proxy_replace_header_map_value (i32.const 1) (i32.const $ck$) (i32.const #ck#) (i32.const $byWasm$) (i32.const #byWasm#)))
    (if (call $proxy_http_call (i32.const $cluster$) (i32.const #cluster#) (i32.const $call$) (i32.const #call#) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 24))
      (then (return (i32.const 0))))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
    (drop (call $proxy_set_effective_context (global.get $caller)))
    (drop (call $proxy_add_header_map_value (i32.const 1) (i32.const $called$) (i32.const #called#) (i32.const $yes$) (i32.const #yes#)))
    (drop (call $proxy_continue_stream (i32.const 0))))`,
};

/**
 * gRPC callouts, chosen by a request header; each adds what it saw to the request before it goes on.
 * x-unary: proxy_grpc_call of test.Echo/Unary ("ping", metadata x-meta: m1) to `service` (a
 * serialized GrpcService); the answer goes in x-msg. x-stream: proxy_grpc_stream of test.Echo/Stream
 * to cluster "grpc", sends "one" and "two", half-closes (proxy_grpc_close); the initial metadata's
 * x-server-meta goes in x-initial, each message in x-msg, the trailers' x-trailer in x-trailing.
 * A close (any callout that did not end in an answer) adds x-close-status (the status as one
 * character, '0' + status) and x-close-message (proxy_get_status). x-cancel: opens a stream, sends
 * "one", cancels it, and adds x-cancel-again: yes when a second cancel answers NotFound. x-bad: a
 * call to cluster "nope" adds x-bad-status: yes when it answers ParseFailure.
 */
export function grpcPlugin(service: Buffer): PluginSource {
  return {
    strings: {
      hUnary: 'x-unary',
      hStream: 'x-stream',
      hCancel: 'x-cancel',
      hBad: 'x-bad',
      service,
      cluster: 'grpc',
      bad: 'nope',
      svc: 'test.Echo',
      unary: 'Unary',
      stream: 'Stream',
      meta: pairs([['x-meta', 'm1']]),
      ping: 'ping',
      one: 'one',
      two: 'two',
      sMeta: 'x-server-meta',
      tKey: 'x-trailer',
      hInitial: 'x-initial',
      hMsg: 'x-msg',
      hTrailing: 'x-trailing',
      hCloseStatus: 'x-close-status',
      hCloseMsg: 'x-close-message',
      hCancelAgain: 'x-cancel-again',
      hBadStatus: 'x-bad-status',
      yes: 'yes',
    },
    imports: ['proxy_get_header_map_value', 'proxy_add_header_map_value', 'proxy_get_buffer_bytes', 'proxy_continue_stream', 'proxy_grpc_call', 'proxy_grpc_stream', 'proxy_grpc_send', 'proxy_grpc_cancel', 'proxy_grpc_close', 'proxy_get_status', 'proxy_set_effective_context'],
    body: `
  (global $tok (mut i32) (i32.const 0))
  (global $caller (mut i32) (i32.const 0))
  (func $asCaller
    (drop (call $proxy_set_effective_context (global.get $caller))))
  (func $has (param $p i32) (param $n i32) (result i32)
    (i32.eqz (call $proxy_get_header_map_value (i32.const 0) (local.get $p) (local.get $n) (i32.const 16) (i32.const 20))))
  (func $addReq (param $k i32) (param $kn i32) (param $v i32) (param $vn i32)
    (drop (call $proxy_add_header_map_value (i32.const 0) (local.get $k) (local.get $kn) (local.get $v) (local.get $vn))))
  (func $open (result i32)
    (drop (call $proxy_grpc_stream (i32.const $cluster$) (i32.const #cluster#) (i32.const $svc$) (i32.const #svc#) (i32.const $stream$) (i32.const #stream#) (i32.const $meta$) (i32.const #meta#) (i32.const 32)))
    (global.set $tok (i32.load (i32.const 32)))
    (drop (call $proxy_grpc_send (global.get $tok) (i32.const $one$) (i32.const #one#) (i32.const 0)))
    (global.get $tok))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $caller (local.get 0))
    (if (call $has (i32.const $hBad$) (i32.const #hBad#))
      (then
        (if (i32.eq (call $proxy_grpc_call (i32.const $bad$) (i32.const #bad#) (i32.const $svc$) (i32.const #svc#) (i32.const $unary$) (i32.const #unary#) (i32.const $meta$) (i32.const #meta#) (i32.const $ping$) (i32.const #ping#) (i32.const 1000) (i32.const 32)) (i32.const 4))
          (then (call $addReq (i32.const $hBadStatus$) (i32.const #hBadStatus#) (i32.const $yes$) (i32.const #yes#))))
        (return (i32.const 0))))
    (if (call $has (i32.const $hUnary$) (i32.const #hUnary#))
      (then
        (drop (call $proxy_grpc_call (i32.const $service$) (i32.const #service#) (i32.const $svc$) (i32.const #svc#) (i32.const $unary$) (i32.const #unary#) (i32.const $meta$) (i32.const #meta#) (i32.const $ping$) (i32.const #ping#) (i32.const 5000) (i32.const 32)))
        (return (i32.const 1))))
    (if (call $has (i32.const $hStream$) (i32.const #hStream#))
      (then
        (drop (call $proxy_grpc_send (call $open) (i32.const $two$) (i32.const #two#) (i32.const 0)))
        (drop (call $proxy_grpc_close (global.get $tok)))
        (return (i32.const 1))))
    (if (call $has (i32.const $hCancel$) (i32.const #hCancel#))
      (then
        (drop (call $proxy_grpc_cancel (call $open)))
        (if (i32.eq (call $proxy_grpc_cancel (global.get $tok)) (i32.const 1))
          (then (call $addReq (i32.const $hCancelAgain$) (i32.const #hCancelAgain#) (i32.const $yes$) (i32.const #yes#))))))
    (i32.const 0))
  (func (export "proxy_on_grpc_receive_initial_metadata") (param i32 i32 i32)
    (call $asCaller)
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 4) (i32.const $sMeta$) (i32.const #sMeta#) (i32.const 16) (i32.const 20)))
      (then (call $addReq (i32.const $hInitial$) (i32.const #hInitial#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
  (func (export "proxy_on_grpc_receive") (param $ctx i32) (param $token i32) (param $size i32)
    (call $asCaller)
    (if (i32.eqz (call $proxy_get_buffer_bytes (i32.const 5) (i32.const 0) (local.get $size) (i32.const 16) (i32.const 20)))
      (then (call $addReq (i32.const $hMsg$) (i32.const #hMsg#) (i32.load (i32.const 16)) (i32.load (i32.const 20)))))
    (if (i32.ne (local.get $token) (global.get $tok)) (then (drop (call $proxy_continue_stream (i32.const 0))))))
  (func (export "proxy_on_grpc_receive_trailing_metadata") (param i32 i32 i32)
    (call $asCaller)
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 5) (i32.const $tKey$) (i32.const #tKey#) (i32.const 16) (i32.const 20)))
      (then (call $addReq (i32.const $hTrailing$) (i32.const #hTrailing#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
  (func (export "proxy_on_grpc_close") (param $ctx i32) (param $token i32) (param $status i32)
    (call $asCaller)
    (i32.store8 (i32.const 40) (i32.add (local.get $status) (i32.const 48)))
    (call $addReq (i32.const $hCloseStatus$) (i32.const #hCloseStatus#) (i32.const 40) (i32.const 1))
    (if (i32.eqz (call $proxy_get_status (i32.const 44) (i32.const 16) (i32.const 20)))
      (then (if (i32.load (i32.const 20))
        (then (call $addReq (i32.const $hCloseMsg$) (i32.const #hCloseMsg#) (i32.load (i32.const 16)) (i32.load (i32.const 20)))))))
    (drop (call $proxy_continue_stream (i32.const 0))))`,
  };
}

/** proxy_close_stream: resets the stream on request headers with x-close-request, on response headers with x-close-response. */
export const closeStreamPlugin: PluginSource = {
  strings: { req: 'x-close-request', res: 'x-close-response' },
  imports: ['proxy_get_header_map_value', 'proxy_close_stream'],
  body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (call $proxy_get_header_map_value (i32.const 0) (i32.const $req$) (i32.const #req#) (i32.const 16) (i32.const 20))
      (then (return (i32.const 0))))
    (drop (call $proxy_close_stream (i32.const 0)))
    (i32.const 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (if (call $proxy_get_header_map_value (i32.const 2) (i32.const $res$) (i32.const #res#) (i32.const 16) (i32.const 20))
      (then (return (i32.const 0))))
    (drop (call $proxy_close_stream (i32.const 1)))
    (i32.const 0))`,
};

/**
 * A network (TCP) plugin's connection part. proxy_on_new_connection pauses on an HTTP call to cluster
 * "authz" and continues the connection (proxy_continue_stream(Downstream)) from its callback.
 * Counters: wasm_test_net_data (downstream data callbacks, in networkPlugin), and the peer types of
 * the close callbacks summed in wasm_test_net_down_closed and wasm_test_net_up_closed.
 */
export const networkConnectionPlugin: PluginSource = {
  strings: {
    cluster: 'authz',
    call: pairs([[':method', 'GET'], [':path', '/check'], [':authority', 'authz.local']]),
    up: 'up:',
    down: 'down:',
    data: 'wasm_test_net_data',
    downClosed: 'wasm_test_net_down_closed',
    upClosed: 'wasm_test_net_up_closed',
  },
  imports: ['proxy_http_call', 'proxy_continue_stream', 'proxy_set_buffer_bytes', 'proxy_define_metric', 'proxy_increment_metric', 'proxy_set_effective_context'],
  body: `
  (global $data (mut i32) (i32.const 0))
  (global $downClosed (mut i32) (i32.const 0))
  (global $upClosed (mut i32) (i32.const 0))
  (global $caller (mut i32) (i32.const 0))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $data$) (i32.const #data#) (i32.const 24)))
    (global.set $data (i32.load (i32.const 24)))
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $downClosed$) (i32.const #downClosed#) (i32.const 24)))
    (global.set $downClosed (i32.load (i32.const 24)))
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $upClosed$) (i32.const #upClosed#) (i32.const 24)))
    (global.set $upClosed (i32.load (i32.const 24)))
    (i32.const 1))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (global.set $caller (local.get 0))
    (if (call $proxy_http_call (i32.const $cluster$) (i32.const #cluster#) (i32.const $call$) (i32.const #call#) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 24))
      (then (return (i32.const 0))))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
    (drop (call $proxy_set_effective_context (global.get $caller)))
    (drop (call $proxy_continue_stream (i32.const 2))))
  (func (export "proxy_on_downstream_connection_close") (param $ctx i32) (param $peer i32)
    (drop (call $proxy_increment_metric (global.get $downClosed) (i64.extend_i32_u (local.get $peer)))))
  (func (export "proxy_on_upstream_connection_close") (param $ctx i32) (param $peer i32)
    (drop (call $proxy_increment_metric (global.get $upClosed) (i64.extend_i32_u (local.get $peer)))))`,
};

/**
 * networkConnectionPlugin with data callbacks: client bytes are held (Pause) until 4 have come, then
 * go up with "up:" before them; upstream bytes go down with "down:" before them.
 */
export const networkPlugin: PluginSource = {
  ...networkConnectionPlugin,
  body: networkConnectionPlugin.body + `
  (func (export "proxy_on_downstream_data") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (drop (call $proxy_increment_metric (global.get $data) (i64.const 1)))
    (if (i32.lt_u (local.get $size) (i32.const 4)) (then (return (i32.const 1))))
    (drop (call $proxy_set_buffer_bytes (i32.const 2) (i32.const 0) (i32.const 0) (i32.const $up$) (i32.const #up#)))
    (i32.const 0))
  (func (export "proxy_on_upstream_data") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (local.get $size)
      (then (drop (call $proxy_set_buffer_bytes (i32.const 3) (i32.const 0) (i32.const 0) (i32.const $down$) (i32.const #down#)))))
    (i32.const 0))`,
};

/** A network plugin that traps (unreachable) on the client's first bytes. */
export const networkTrapPlugin: PluginSource = {
  imports: [],
  body: `
  (func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32)
    unreachable)`,
};
