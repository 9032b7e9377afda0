// envoy.extensions.filters.http.wasm.v3.Wasm, compiled once per config update: the module's bytes
// (vm_config.code.local: filename, inline_bytes, inline_string; or code.remote, fetched through its
// cluster, retried per its retry_policy (remote-fetch-retry.ts) and checked against its sha256; or,
// code.remote without a cluster (istiod's "_"), fetched as Istio's agent does, wasm-fetch.ts)
// compile once per content (sha256), a VM is instantiated once per (vm_id, code, vm configuration,
// environment), and a root context is started per (VM, name, root_id, plugin configuration), as
// Envoy shares them. A root context no config uses any more (its configs were collected) gets
// proxy_on_done and proxy_on_delete. failure_policy (or the deprecated fail_open) says what a VM
// failure does to the streams; with FAIL_RELOAD a later stream gets the plugin on a new VM
// (wasm-failure-policy.ts).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { silentLogger, type Logger } from '../../../core/log.ts';
import type { Reader } from '../../config/reader.ts';
import { requestThroughCluster } from '../../upstream/cluster-request.ts';
import type { FilterCompileContext } from '../filter.ts';
import { readFetchRetry, withFetchRetries, type FetchRetry } from '../remote-fetch-retry.ts';
import { PluginReload, readFailurePolicy, type Failure } from './wasm-failure-policy.ts';
import type * as WasmFetch from './wasm-fetch.ts';
import type { ModuleRequest } from './wasm-fetch.ts';
import { WasmPlugin } from './wasm-plugin.ts';
import { WasmVm } from './wasm-vm.ts';
import { WebAssembly, type WasmModule } from './webassembly.ts';

export interface WasmFilterConfig {
  /**
   * Undefined when the plugin did not load (the config is then refused) or, for remote code, until
   * it is fetched and started: the listener warms until then, and serves without the plugin (as
   * after a VM failure: fail_open or 503) only when the fetch gave up.
   */
  plugin: WasmPlugin | undefined;
  readonly failOpen: boolean;
  /** failure_policy FAIL_RELOAD (else undefined): how the plugin is started again once its VM failed. */
  readonly reload?: PluginReload;
  /** Agent-fetched code that could not be fetched: streams are denied as by Istio's stand-in RBAC filter (403). */
  fetchFailed?: boolean;
}

/** code.remote: where the module is fetched from, and what its sha256 must be. */
interface RemoteCode {
  readonly cluster: string;
  readonly uri: string;
  readonly sha256: string;
  readonly timeoutMs: number;
  /** retry_policy, as Envoy's remote data source: one retry without it. */
  readonly retry: FetchRetry;
}

/** code.remote the way istiod sends it for its agent (no cluster): fetched by rig proxy from the url ('' sha256: unchecked). */
interface AgentCode {
  readonly agent: true;
  readonly uri: string;
  readonly sha256: string;
  readonly timeoutMs: number;
}

/** The env keys istiod adds for its agent; the agent removes every ISTIO_META_* key before the VM sees the env. */
const AGENT_ENV = { secret: 'ISTIO_META_WASM_IMAGE_PULL_SECRET', policy: 'ISTIO_META_WASM_IMAGE_PULL_POLICY', version: 'ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION' } as const;
const PULL_POLICIES = new Set(['UNSPECIFIED_POLICY', 'IfNotPresent', 'Always']);

/** Longer modules are refused (a fetch is held in memory whole). */
const MAX_REMOTE_BYTES = 64 << 20;

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
/** A config's entry, released once the config is collected; a reload unregisters it (by the config) and releases it at once. */
const released = new FinalizationRegistry<PluginEntry>(release);
function release(p: PluginEntry): void {
  if (--p.users > 0) return;
  if (plugins.get(p.key) === p) plugins.delete(p.key);
  p.plugin.stop();
  // The last root context of its VM: the instance (and its memory) goes too.
  if (p.plugin.vm.roots === 0) for (const [k, vm] of vms) if (vm === p.plugin.vm) vms.delete(k);
}

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

/** The module's bytes, or where to fetch them, from vm_config.code; undefined (an error reported) when neither. */
function readCode(r: Reader): Buffer | RemoteCode | AgentCode | undefined {
  const code = r.obj('code');
  if (!code) {
    r.issues.error(r.at('code'), 'vm_config needs code (local: filename, inline_bytes or inline_string; or remote)');
    return undefined;
  }
  const remote = code.obj('remote');
  const local = code.obj('local');
  code.done();
  if (remote) return readRemote(remote);
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

function readRemote(r: Reader): RemoteCode | AgentCode | undefined {
  const http = r.obj('http_uri');
  const sha256 = r.str('sha256').toLowerCase();
  const retryPolicy = r.obj('retry_policy');
  r.done();
  if (!http) {
    r.issues.error(r.at('http_uri'), 'remote code needs http_uri (uri, cluster, timeout)');
    return undefined;
  }
  const uri = http.str('uri');
  const cluster = http.str('cluster');
  const timeoutMs = http.durationMs('timeout', 30_000);
  http.done();
  if (cluster === '' || cluster === '_') {
    if (retryPolicy) {
      r.issues.warn(r.at('retry_policy'), "has no effect on a module fetched without a cluster: rig proxy fetches it as Istio's agent does (up to 5 tries, 500 ms backoff doubling, within http_uri.timeout); name a cluster to fetch through it with this policy");
      retryPolicy.accept(...Object.keys(retryPolicy.raw));
    }
    return readAgentRemote(r, http, uri, sha256 === 'nil' ? '' : sha256, timeoutMs);
  }
  const retry = readFetchRetry(retryPolicy, 1, 'Wasm module fetches');
  if (!/^[0-9a-f]{64}$/.test(sha256)) r.issues.error(r.at('sha256'), 'remote code needs sha256 (64 hex digits), which the fetched module must match');
  if (!URL.canParse(uri)) r.issues.error(http.at('uri'), `http_uri.uri ${JSON.stringify(uri)} is not a URL`);
  return cluster && URL.canParse(uri) && sha256.length === 64 ? { cluster, uri, sha256, timeoutMs, retry } : undefined;
}

/** istiod's form (no cluster): an http(s):// or oci:// url, and a sha256 when the WasmPlugin has one. */
function readAgentRemote(r: Reader, http: Reader, uri: string, sha256: string, timeoutMs: number): AgentCode | undefined {
  let ok = true;
  if (!/^(https?|oci):\/\/./.test(uri) || !URL.canParse(uri)) {
    http.issues.error(http.at('uri'), `http_uri.uri ${JSON.stringify(uri)} is not an http://, https:// or oci:// url (rig proxy fetches a module without a cluster as Istio's agent does; name a cluster to fetch through it)`);
    ok = false;
  }
  if (sha256 && !/^[0-9a-f]{64}$/.test(sha256)) {
    r.issues.error(r.at('sha256'), 'sha256 must be 64 hex digits (or left out)');
    ok = false;
  }
  return ok ? { agent: true, uri, sha256, timeoutMs } : undefined;
}

/**
 * Fetches a remote module through its cluster, as Envoy's remote data source: every failed try
 * (no answer, timeout, a status other than 200, an empty body, too large, a sha256 mismatch) is
 * tried again per its retry_policy (RemoteAsyncDataProvider::onFailure retries whatever failed,
 * unlike Envoy's JWKS fetcher, which retries only 5xx and resets); rejects with a readable Error
 * once it gave up.
 */
function fetchModule(remote: RemoteCode, clusters: FilterCompileContext['clusters'], signal: AbortSignal): Promise<Buffer> {
  const u = new URL(remote.uri);
  return withFetchRetries(remote.retry, async () => {
    const res = await requestThroughCluster(clusters, { cluster: remote.cluster, method: 'GET', path: u.pathname + u.search, headers: { host: u.host }, timeoutMs: remote.timeoutMs, signal });
    if (res.status !== 200) throw new Error(`GET ${remote.uri} through cluster ${remote.cluster} answered ${res.status}`);
    if (res.body.length === 0) throw new Error(`GET ${remote.uri} through cluster ${remote.cluster} answered an empty body`);
    if (res.body.length > MAX_REMOTE_BYTES) throw new Error(`the module at ${remote.uri} is larger than ${MAX_REMOTE_BYTES} bytes`);
    const sha = crypto.createHash('sha256').update(res.body).digest('hex');
    if (sha !== remote.sha256) throw new Error(`the module at ${remote.uri} has sha256 ${sha}, not the configured ${remote.sha256}`);
    return res.body;
  }, signal);
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
  const failure = readFailurePolicy(c, name, ctx);
  const failOpen = failure.failOpen;
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
  const code = readCode(v);
  const vmConfiguration = readConfiguration(v, 'configuration');
  for (const k of ['allow_precompiled', 'nack_on_code_cache_miss']) {
    if (v.bool(k, false)) v.issues.warn(v.at(k), `${k} has no effect in rig proxy (it compiles modules itself)`);
  }
  const env = readEnv(v.obj('environment_variables'));
  v.done();
  if (!code) return { plugin: undefined, failOpen };
  const log = ctx.log ?? silentLogger;
  const agent = !Buffer.isBuffer(code) && 'agent' in code ? agentRequest(code, env, name) : undefined;
  const params: PluginParams = { vmId, name, rootId, vmConfiguration, configuration, env, ctx, log, failure };
  if (agent) {
    const file = wasmFetch?.moduleCache.lookup(agent);
    const cached = file === undefined ? undefined : cachedModule(file, (m) => v.issues.error(v.at('code'), m));
    if (!cached) return whenFetched(params, agent.url, true, (signal) => loadWasmFetch().then((f) => f.moduleCache.fetch(agent, signal)).then((f) => fs.promises.readFile(f)));
    const { module, sha } = cached;
    return configured(module, sha, params, (m) => c.issues.error(c.path, m));
  }
  if (!Buffer.isBuffer(code)) {
    // Fetched before (an earlier config): started at once, as Envoy's remote code cache.
    const cached = modules.get((code as RemoteCode).sha256);
    if (cached) return configured(cached, (code as RemoteCode).sha256, params, (m) => c.issues.error(c.path, m));
    return whenFetched(params, code.uri, false, (signal) => fetchModule(code as RemoteCode, ctx.clusters, signal));
  }
  const sha = crypto.createHash('sha256').update(code).digest('hex');
  const module = compileModule(code, sha, (m) => v.issues.error(v.at('code'), m));
  return configured(module, sha, params, (m) => c.issues.error(c.path, m));
}

type WasmFetchModule = typeof WasmFetch;
let wasmFetch: WasmFetchModule | undefined;
/** The agent's fetcher, loaded with the first plugin that needs it (it brings undici's fetch). */
async function loadWasmFetch(): Promise<WasmFetchModule> {
  return (wasmFetch ??= await import('./wasm-fetch.ts'));
}

/** The agent's request for agent-form code, from the env istiod filled (whose ISTIO_META_* keys are taken out of the VM's env, as the agent does). */
function agentRequest(code: AgentCode, env: Map<string, string>, name: string): ModuleRequest {
  const policy = env.get(AGENT_ENV.policy) ?? '';
  const req = {
    url: code.uri,
    sha256: code.sha256,
    timeoutMs: code.timeoutMs,
    pullPolicy: (PULL_POLICIES.has(policy) ? policy : 'UNSPECIFIED_POLICY') as 'UNSPECIFIED_POLICY',
    pullSecret: env.get(AGENT_ENV.secret),
    resourceName: name,
    resourceVersion: env.get(AGENT_ENV.version) ?? '',
  };
  for (const k of [...env.keys()]) if (k.startsWith('ISTIO_META_')) env.delete(k);
  return req;
}

/** The content sha256 of module cache files read before: a file's content never changes (its name is its checksum). */
const cacheFileShas = new Map<string, string>();

/** The compiled module of a module cache file; undefined when the file is gone (fetched again) or does not compile (reported). */
function cachedModule(file: string, report: (message: string) => void): { module: WasmModule | undefined; sha: string } | undefined {
  const known = cacheFileShas.get(file);
  const compiled = known === undefined ? undefined : modules.get(known);
  if (compiled) return { module: compiled, sha: known! };
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  const sha = crypto.createHash('sha256').update(bytes).digest('hex');
  cacheFileShas.set(file, sha);
  return { module: compileModule(bytes, sha, report), sha };
}

/**
 * A config whose plugin starts once its code is fetched. The fetch is an init target of the
 * listener version (Envoy's remote data source): a new listener is bound, an updated one swapped,
 * only once it settled, retries included, so no stream meets the plugin unfetched (Istio's agent
 * likewise holds the extension config until its module is fetched). When the fetch gave up:
 * Envoy's remote code stays so (503, or on with fail_open); agent code is denied (403) as by the
 * RBAC filter Istio's agent puts in its place (left out with fail_open). A version dropped while
 * it warms stops its fetch (`fetchBytes` gets the signal) and starts no plugin.
 */
function whenFetched(p: PluginParams, uri: string, agent: boolean, fetchBytes: (signal: AbortSignal) => Promise<Buffer>): WasmFilterConfig {
  const config = newConfig(p.failure);
  const failOpen = config.failOpen;
  const what = `the Wasm plugin ${p.name || p.rootId || '(unnamed)'}`;
  const fail = (m: string) => {
    if (agent) config.fetchFailed = true;
    p.log.error(`${what}: ${m}; its streams ${failOpen ? 'go on without it (fail_open)' : agent ? 'are denied (403, fail closed)' : 'are answered 503'}`);
  };
  const fetchAndStart = (signal: AbortSignal) =>
    fetchBytes(signal)
      .then(
        (bytes) => {
          if (signal.aborted) return;
          const sha = crypto.createHash('sha256').update(bytes).digest('hex');
          const module = compileModule(bytes, sha, fail);
          const entry = module && start(module, sha, p, fail);
          if (!entry) return;
          adopt(config, entry, module, sha, p);
          p.log.info(`${what}: fetched ${uri} (${bytes.length} bytes) and started`);
        },
        (e: Error) => (signal.aborted ? p.log.debug(`${what}: fetch of ${uri} stopped, its listener version dropped`) : fail(e.message)),
      )
      // Never an unhandled rejection out of a config update.
      .catch((e: Error) => fail(`starting the fetched module failed: ${e.message}`));
  p.ctx.initManager.add(`${what}'s code from ${uri}`, fetchAndStart);
  return config;
}

interface PluginParams {
  readonly vmId: string;
  readonly name: string;
  readonly rootId: string;
  readonly vmConfiguration: Buffer;
  readonly configuration: Buffer;
  readonly env: Map<string, string>;
  readonly ctx: FilterCompileContext;
  readonly log: Logger;
  readonly failure: Failure;
}

/** A config of code at hand, its plugin started (none when the module or the plugin did not start: reported). */
function configured(module: WasmModule | undefined, sha: string, p: PluginParams, report: (message: string) => void): WasmFilterConfig {
  const config = newConfig(p.failure);
  const entry = module && start(module, sha, p, report);
  if (entry) adopt(config, entry, module, sha, p);
  return config;
}

function newConfig(failure: Failure): WasmFilterConfig {
  if (!failure.reload) return { plugin: undefined, failOpen: failure.failOpen };
  return { plugin: undefined, failOpen: false, reload: new PluginReload(failure.reload) };
}

/** The config runs the entry's plugin (one more user, one fewer once the config is collected); with FAIL_RELOAD, it may start it again. */
function adopt(config: WasmFilterConfig, entry: PluginEntry, module: WasmModule, sha: string, p: PluginParams): void {
  hold(config, entry);
  if (!config.reload) return;
  const what = `the Wasm plugin ${p.name || p.rootId || '(unnamed)'}`;
  let current = entry;
  config.reload.started(() => {
    const fresh = start(module, sha, p, (m) => p.log.warn(`${what} failed and was not reloaded (its streams fail closed until the next try): ${m}`));
    if (!fresh || fresh.plugin.vm.failed) return false;
    p.log.info(`${what} failed and was reloaded on a new VM (FAIL_RELOAD)`);
    released.unregister(config);
    release(current);
    hold(config, fresh);
    current = fresh;
    return true;
  });
}

function hold(config: WasmFilterConfig, entry: PluginEntry): void {
  entry.users++;
  config.plugin = entry.plugin;
  released.register(config, entry, config);
}

/** The module for these bytes (compiled once per sha256); undefined when it does not compile (reported). */
function compileModule(bytes: Buffer, sha: string, report: (message: string) => void): WasmModule | undefined {
  let module = modules.get(sha);
  if (module) return module;
  try {
    module = new WebAssembly.Module(bytes);
  } catch (e) {
    report(`the Wasm module does not compile: ${(e as Error).message}`);
    return undefined;
  }
  modules.set(sha, module);
  return module;
}

/** The plugin's root context on its VM (both shared when their keys match); undefined when either does not start (reported). */
function start(module: WasmModule, sha: string, p: PluginParams, report: (message: string) => void): PluginEntry | undefined {
  const vmKey = JSON.stringify([p.vmId, sha, p.vmConfiguration.toString('base64'), [...p.env]]);
  let vm = vms.get(vmKey);
  if (!vm || vm.failed) {
    try {
      vm = new WasmVm(module, { vmId: p.vmId, name: p.name || p.rootId, vmConfiguration: p.vmConfiguration, env: p.env, log: p.log, stats: p.ctx.stats, clusters: p.ctx.clusters });
    } catch (e) {
      report(`the Wasm module does not start: ${(e as Error).message}`);
      return undefined;
    }
    vms.set(vmKey, vm);
  }
  const pluginKey = JSON.stringify([vmKey, p.name, p.rootId, p.configuration.toString('base64')]);
  const known = plugins.get(pluginKey);
  if (known && known.plugin.vm === vm) return known;
  const plugin = new WasmPlugin(vm, p.name, p.rootId, p.configuration, p.ctx.node);
  const why = plugin.start();
  if (why) {
    report(`the Wasm plugin ${p.name || p.rootId || '(unnamed)'} did not start: ${why}`);
    plugin.stop();
    if (vm.failed || vm.roots === 0) vms.delete(vmKey);
    return undefined;
  }
  const entry: PluginEntry = { key: pluginKey, plugin, users: 0 };
  plugins.set(pluginKey, entry);
  return entry;
}
