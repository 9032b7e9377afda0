// envoy.extensions.filters.http.wasm.v3.Wasm, compiled once per config update: the module's bytes
// (vm_config.code.local: filename, inline_bytes, inline_string; remote code is refused, rig proxy
// fetches nothing) compile once per content (sha256), a VM is instantiated once per (vm_id, code,
// vm configuration, environment), and a root context is started per (VM, name, root_id, plugin
// configuration), as Envoy shares them. A root context no config uses any more (its configs were
// collected) gets proxy_on_done and proxy_on_delete.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { silentLogger } from '../../../core/log.ts';
import type { Reader } from '../../config/reader.ts';
import type { FilterCompileContext } from '../filter.ts';
import { WasmPlugin } from './wasm-plugin.ts';
import { WasmVm } from './wasm-vm.ts';
import { WebAssembly, type WasmModule } from './webassembly.ts';

export interface WasmFilterConfig {
  /** Undefined when the plugin did not load (the config is then refused). */
  readonly plugin: WasmPlugin | undefined;
  readonly failOpen: boolean;
}

const RUNTIMES = new Set(['', 'envoy.wasm.runtime.v8', 'envoy.wasm.runtime.wamr', 'envoy.wasm.runtime.wasmtime', 'envoy.wasm.runtime.wavm']);
const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';
const BYTES_VALUE = 'type.googleapis.com/google.protobuf.BytesValue';

const modules = new Map<string, WasmModule>();
const vms = new Map<string, WasmVm>();
interface PluginEntry {
  readonly key: string;
  readonly plugin: WasmPlugin;
  /** Compiled configs using the plugin, not yet collected. */
  users: number;
}
const plugins = new Map<string, PluginEntry>();
const released = new FinalizationRegistry<PluginEntry>((p) => {
  if (--p.users > 0) return;
  if (plugins.get(p.key) === p) plugins.delete(p.key);
  p.plugin.stop();
  // The last root context of its VM: the instance (and its memory) goes too.
  if (p.plugin.vm.roots === 0) for (const [k, vm] of vms) if (vm === p.plugin.vm) vms.delete(k);
});

/** google.protobuf.Any holding a StringValue or BytesValue (what Envoy passes as a plugin's configuration), as bytes. */
function readConfiguration(r: Reader, key: string): Buffer {
  const a = r.obj(key);
  if (!a) return Buffer.alloc(0);
  const type = a.str('@type');
  let out = Buffer.alloc(0);
  if (type === STRING_VALUE) out = Buffer.from(a.str('value'));
  else if (type === BYTES_VALUE) out = Buffer.from(a.str('value'), 'base64');
  else r.issues.error(a.path, `a Wasm configuration must be a google.protobuf.StringValue or BytesValue (got ${type || 'no @type'}); put the plugin's JSON in a StringValue`);
  a.accept('@type', 'value');
  a.done();
  return out;
}

/** The module's bytes from vm_config.code; undefined (an error reported) when there are none. */
function readCode(r: Reader): Buffer | undefined {
  const code = r.obj('code');
  if (!code) {
    r.issues.error(r.at('code'), 'vm_config needs code (local: filename, inline_bytes or inline_string)');
    return undefined;
  }
  if (code.has('remote')) {
    r.issues.error(code.at('remote'), 'remote Wasm code is not fetched by rig proxy; put the module in a file and use code.local.filename');
    code.accept('remote');
  }
  const local = code.obj('local');
  code.done();
  if (!local) return undefined;
  let bytes: Buffer | undefined;
  if (local.has('filename')) {
    const f = local.str('filename');
    try {
      bytes = fs.readFileSync(f);
    } catch (e) {
      r.issues.error(local.at('filename'), `cannot read the Wasm module ${f}: ${(e as Error).message}`);
    }
  } else if (local.has('inline_bytes')) bytes = Buffer.from(local.str('inline_bytes'), 'base64');
  else if (local.has('inline_string')) bytes = Buffer.from(local.str('inline_string'), 'latin1');
  else r.issues.error(local.path, 'code.local needs filename, inline_bytes or inline_string');
  local.done();
  return bytes;
}

function readEnv(r: Reader | undefined): Map<string, string> {
  const env = new Map<string, string>();
  if (!r) return env;
  for (const k of r.strs('host_env_keys')) {
    const v = process.env[k];
    if (v !== undefined) env.set(k, v);
  }
  const kv = r.obj('key_values');
  if (kv) {
    for (const k of Object.keys(kv.raw)) env.set(k, kv.str(k));
    kv.done();
  }
  r.done();
  return env;
}

export function readWasmConfig(r: Reader, ctx: FilterCompileContext): WasmFilterConfig {
  const c = r.obj('config');
  r.done();
  if (!c) {
    r.issues.error(r.at('config'), 'the Wasm filter needs config (a PluginConfig with vm_config)');
    return { plugin: undefined, failOpen: false };
  }
  const name = c.str('name');
  const rootId = c.str('root_id');
  const failOpen = c.bool('fail_open', false);
  const configuration = readConfiguration(c, 'configuration');
  if (c.has('capability_restriction_config')) {
    c.issues.warn(c.at('capability_restriction_config'), 'capability restrictions are not enforced by rig proxy: the plugin may call every host function rig proxy implements');
    c.accept('capability_restriction_config');
  }
  const v = c.obj('vm_config');
  c.done();
  if (!v) {
    c.issues.error(c.at('vm_config'), 'the plugin needs vm_config (rig proxy has no vm shared by name)');
    return { plugin: undefined, failOpen };
  }
  const vmId = v.str('vm_id');
  const runtime = v.str('runtime');
  if (!RUNTIMES.has(runtime)) v.issues.error(v.at('runtime'), `runtime ${runtime} is not available in rig proxy (null-VM plugins are compiled into Envoy); use envoy.wasm.runtime.v8: rig proxy runs modules on Node's WebAssembly`);
  const bytes = readCode(v);
  const vmConfiguration = readConfiguration(v, 'configuration');
  for (const k of ['allow_precompiled', 'nack_on_code_cache_miss']) {
    if (v.bool(k, false)) v.issues.warn(v.at(k), `${k} has no effect in rig proxy (it compiles modules itself and fetches none)`);
  }
  const env = readEnv(v.obj('environment_variables'));
  v.done();
  if (!bytes) return { plugin: undefined, failOpen };

  const sha = crypto.createHash('sha256').update(bytes).digest('hex');
  let module = modules.get(sha);
  if (!module) {
    try {
      module = new WebAssembly.Module(bytes);
    } catch (e) {
      v.issues.error(v.at('code'), `the Wasm module does not compile: ${(e as Error).message}`);
      return { plugin: undefined, failOpen };
    }
    modules.set(sha, module);
  }
  const vmKey = JSON.stringify([vmId, sha, vmConfiguration.toString('base64'), [...env]]);
  let vm = vms.get(vmKey);
  if (!vm || vm.failed) {
    try {
      vm = new WasmVm(module, { vmId, name: name || rootId, vmConfiguration, env, log: ctx.log ?? silentLogger, stats: ctx.stats, clusters: ctx.clusters });
    } catch (e) {
      v.issues.error(v.at('code'), `the Wasm module does not start: ${(e as Error).message}`);
      return { plugin: undefined, failOpen };
    }
    vms.set(vmKey, vm);
  }
  const pluginKey = JSON.stringify([vmKey, name, rootId, configuration.toString('base64')]);
  let entry = plugins.get(pluginKey);
  if (!entry || entry.plugin.vm !== vm) {
    const plugin = new WasmPlugin(vm, name, rootId, configuration, ctx.node);
    const why = plugin.start();
    if (why) {
      c.issues.error(c.path, `the Wasm plugin ${name || rootId || '(unnamed)'} did not start: ${why}`);
      plugin.stop();
      if (vm.failed || vm.roots === 0) vms.delete(vmKey);
      return { plugin: undefined, failOpen };
    }
    plugins.set(pluginKey, (entry = { key: pluginKey, plugin, users: 0 }));
  }
  entry.users++;
  const config: WasmFilterConfig = { plugin: entry.plugin, failOpen };
  released.register(config, entry);
  return config;
}
