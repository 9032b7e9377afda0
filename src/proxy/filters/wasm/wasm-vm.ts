// One Proxy-Wasm VM: an instance of a compiled module (Node's WebAssembly) with the host functions
// of ABI 0.2.1 and the small WASI subset the SDKs' runtimes import. The host functions act on the
// context whose callback runs now (`current`, set around every call into the module; one at a time
// on Node's thread), so they are made once per VM. A trap in the module fails the VM for good (Envoy's
// RuntimeError fail state, the one FAIL_RELOAD reloads): its contexts then follow their plugin's
// failure policy. As in Envoy, a host function's own error answers the module with an error code
// (InternalFailure; EINVAL for WASI) and proc_exit returns (logged): neither fails the VM, though the
// SDKs trap right after proc_exit.
import crypto from 'node:crypto';
import type { Logger } from '../../../core/log.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { requestThroughCluster } from '../../upstream/cluster-request.ts';
import type { Stats } from '../../stats/stats.ts';
import type { LocalReply } from '../filter.ts';
import { BufferType, Errno, LogLevel, MapType, OLD_ABI, parsePairs, serializePairs, SUPPORTED_ABI, WasmResult } from './wasm-abi.ts';
import { getSharedData, registerSharedQueue, resolveSharedQueue, setSharedData, sharedQueue, WasmMetrics } from './wasm-host-data.ts';
import { MapAccess, type HeaderAccess } from './wasm-headers.ts';
import { GrpcCallout, GrpcStatus, grpcTarget, type GrpcCalloutOwner } from './wasm-grpc.ts';
import type { HeaderMap } from '../filter.ts';
import { WebAssembly, type WasmMemory, type WasmModule } from './webassembly.ts';
import { ForeignFunctions, type ExpressionInput } from './wasm-foreign.ts';
import type { PropertyPrototype, StateOwner } from './wasm-state.ts';

/** A root or HTTP context as the host functions see it. */
export interface HostContext {
  readonly id: number;
  /** The root context (itself for a root context). */
  readonly root: HostContext;
  /** A header map; `edit` when the plugin changes it (the last request body call may add trailers, as Envoy). */
  headers(type: number, edit?: boolean): HeaderAccess | undefined;
  buffer(type: number): Buffer | undefined;
  setBuffer(type: number, value: Buffer): number;
  property(path: readonly string[]): Buffer | undefined;
  /** proxy_set_property, following the property's declaration (declare_property) when there is one. */
  setProperty(path: readonly string[], value: Buffer, declared: PropertyPrototype | undefined): number;
  sendLocalResponse(reply: LocalReply): number;
  continueStream(type: number): number;
  closeStream(type: number): number;
  setTickPeriod(ms: number): number;
  /**
   * A root context: an HTTP call of it (or of one of its streams) was answered (undefined: failed);
   * runs the callback. A stream: the VM failed while a call it made was out; it fails open or closed.
   */
  onHttpCallResponse(token: number, response: CallResponse | undefined): void;
  /** The same for gRPC callouts: a root context runs callback `fn` (context id, token, n); a stream learns of the VM's failure. */
  callout(fn: string, token: number, n: number): void;
  /** What a CEL expression (the expr_evaluate foreign function) is evaluated against: the stream; undefined for a root context. */
  expressionInput(): ExpressionInput | undefined;
  /** The clear_route_cache foreign function: the stream's route is chosen again; absent for a root context. */
  clearRouteCache?(): void;
  /** Where a stream keeps filter state (set_envoy_filter_state); absent for a root context. */
  readonly state?: StateOwner;
}

export interface CallResponse {
  headers: HeaderAccess;
  body: Buffer;
  trailers: HeaderAccess;
}

export interface VmOptions {
  readonly vmId: string;
  readonly name: string;
  readonly vmConfiguration: Buffer;
  readonly env: ReadonlyMap<string, string>;
  readonly log: Logger;
  readonly stats: Stats;
  readonly clusters: ClusterManager;
}

type Fn = (...a: never[]) => unknown;

/** A trap of the module (V8 reports a stack overflow in Wasm as a RangeError). */
function isTrap(e: unknown): boolean {
  return e instanceof WebAssembly.RuntimeError || (e instanceof RangeError && e.message.includes('call stack size'));
}
type Exports = Record<string, unknown>;

const LEVELS: Record<string, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, fatal: 5, silent: 5 };

export class WasmVm implements GrpcCalloutOwner {
  readonly o: VmOptions;
  private readonly exports: Exports;
  private readonly memory: WasmMemory;
  private readonly malloc: (size: number) => number;
  readonly metrics: WasmMetrics;
  /** Why the VM can no longer run (a trap: Envoy's RuntimeError); undefined while healthy. */
  failed: string | undefined;
  private current: HostContext | undefined;
  private readonly contexts = new Map<number, HostContext>();
  private nextContextId = 1;
  private nextToken = 1;
  /** The answer of the HTTP call whose callback runs now. */
  private callResponse: CallResponse | undefined;
  /**
   * HTTP calls in flight. As Envoy (proxy-wasm-cpp-host), a call belongs to the root context of the
   * context that made it: its answer runs proxy_on_http_call_response there (the SDKs then set the
   * effective context to the stream they made it for); `origin` is told when the VM fails.
   */
  private readonly calls = new Map<number, { root: HostContext; origin: HostContext; abort: AbortController }>();
  private readonly grpcCalls = new Map<number, GrpcCallout>();
  /** While a gRPC callback runs: its metadata (map type 4 or 5) or message (buffer type 5). */
  private grpcMap: HeaderAccess | undefined;
  private grpcMapType = -1;
  private grpcBuffer: Buffer | undefined;
  /** What proxy_get_status answers: the last gRPC close's status and message. */
  private statusCode = 0;
  private statusMessage: Buffer = Buffer.alloc(0);
  private readonly warned = new Set<string>();
  private rootCount = 0;
  private readonly foreign: ForeignFunctions;

  /** Instantiates `module`; throws an Error that says what is wrong with the module. */
  constructor(module: WasmModule, o: VmOptions) {
    this.o = o;
    this.metrics = new WasmMetrics(o.stats);
    this.foreign = new ForeignFunctions(o.log, (what, msg) => this.warnOnce(what, msg));
    const names = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
    if (names.has(OLD_ABI)) throw new Error('the module targets Proxy-Wasm ABI 0.1.0; rig proxy implements 0.2.1 (rebuild it with a current SDK)');
    if (!SUPPORTED_ABI.some((a) => names.has(a))) throw new Error(`the module exports none of ${SUPPORTED_ABI.join(', ')}: it is not a Proxy-Wasm 0.2 plugin`);
    const instance = new WebAssembly.Instance(module, this.imports(module));
    this.exports = instance.exports;
    const mem = this.exports.memory;
    if (!(mem instanceof WebAssembly.Memory)) throw new Error('the module exports no memory');
    this.memory = mem;
    const alloc = (this.exports.proxy_on_memory_allocate ?? this.exports.malloc) as ((n: number) => number) | undefined;
    if (typeof alloc !== 'function') throw new Error('the module exports neither proxy_on_memory_allocate nor malloc');
    this.malloc = alloc;
    const start = (this.exports._initialize ?? this.exports._start) as (() => void) | undefined;
    if (typeof start === 'function') start();
  }

  has(fn: string): boolean {
    return typeof this.exports[fn] === 'function';
  }

  newContextId(): number {
    return this.nextContextId++;
  }

  register(ctx: HostContext): void {
    this.contexts.set(ctx.id, ctx);
  }

  unregister(ctx: HostContext): void {
    this.contexts.delete(ctx.id);
    this.foreign.drop(ctx.id);
    for (const [token, c] of this.calls) {
      if (c.root !== ctx) continue;
      c.abort.abort();
      this.calls.delete(token);
    }
    for (const [token, g] of this.grpcCalls) {
      if (g.ctx !== ctx) continue;
      g.cancel();
      this.grpcCalls.delete(token);
    }
  }

  /**
   * Calls export `fn` (when the module has it) as context `ctx`; the result as a number (0 when the
   * export is missing or returns nothing), undefined when the VM failed.
   */
  call(ctx: HostContext, fn: string, ...args: number[]): number | undefined {
    if (this.failed) return undefined;
    const f = this.exports[fn] as Fn | undefined;
    if (typeof f !== 'function') return 0;
    const prev = this.current;
    this.current = ctx;
    try {
      const r = (f as (...a: number[]) => unknown)(...args);
      return typeof r === 'bigint' ? Number(r) : typeof r === 'number' ? r : 0;
    } catch (e) {
      this.fail(`${fn} failed: ${(e as Error).message}`);
      return undefined;
    } finally {
      this.current = prev;
    }
  }

  private fail(why: string): void {
    if (this.failed) return;
    this.failed = why;
    this.o.log.error(`wasm plugin ${this.o.name} (vm ${this.o.vmId || '""'}): ${why}; the VM is stopped`);
    // Contexts waiting for an answer learn of the failure now (a paused stream fails open or closed).
    const waiting = [...this.calls];
    this.calls.clear();
    for (const [token, c] of waiting) {
      c.abort.abort();
      queueMicrotask(() => c.origin.onHttpCallResponse(token, undefined));
    }
    const grpc = [...this.grpcCalls.values()];
    this.grpcCalls.clear();
    for (const g of grpc) {
      if (g.ended) continue;
      g.cancel();
      queueMicrotask(() => g.origin.callout('proxy_on_grpc_close', g.token, GrpcStatus.Unavailable));
    }
  }

  /** Root contexts started on this VM and not yet stopped. */
  get roots(): number {
    return this.rootCount;
  }

  rootStarted(): void {
    this.rootCount++;
  }

  rootStopped(): void {
    this.rootCount--;
  }

  /** Runs the callback of an HTTP call's answer (undefined: the call failed) in the context that made it. */
  private answer(token: number, res: CallResponse | undefined): void {
    const c = this.calls.get(token);
    if (!c) return;
    this.calls.delete(token);
    c.root.onHttpCallResponse(token, res);
  }

  // === gRPC callouts (wasm-grpc.ts) ===

  grpcInitialMetadata(c: GrpcCallout, headers: HeaderMap): void {
    this.grpcEvent(c, 'proxy_on_grpc_receive_initial_metadata', MapType.GrpcReceiveInitialMetadata, new MapAccess(headers), undefined);
  }

  grpcMessage(c: GrpcCallout, message: Buffer): void {
    // A unary call is done once answered.
    if (c.unary) this.grpcCalls.delete(c.token);
    this.grpcEvent(c, 'proxy_on_grpc_receive', -1, undefined, message);
  }

  grpcTrailingMetadata(c: GrpcCallout, trailers: HeaderMap): void {
    this.grpcEvent(c, 'proxy_on_grpc_receive_trailing_metadata', MapType.GrpcReceiveTrailingMetadata, new MapAccess(trailers), undefined);
  }

  grpcClose(c: GrpcCallout, status: number, message: string): void {
    if (this.grpcCalls.get(c.token) !== c) return;
    // As Envoy: a stream the plugin has not closed stays known (proxy_grpc_close answers Ok) until it does.
    if (c.unary || c.localClosed) this.grpcCalls.delete(c.token);
    this.statusCode = status;
    this.statusMessage = Buffer.from(message);
    c.ctx.callout('proxy_on_grpc_close', c.token, status);
  }

  private grpcEvent(c: GrpcCallout, fn: string, mapType: number, map: HeaderAccess | undefined, message: Buffer | undefined): void {
    if (!c.unary && this.grpcCalls.get(c.token) !== c) return;
    this.grpcMap = map;
    this.grpcMapType = mapType;
    this.grpcBuffer = message;
    try {
      c.ctx.callout(fn, c.token, map ? map.count() : (message?.length ?? 0));
    } finally {
      this.grpcMap = this.grpcBuffer = undefined;
      this.grpcMapType = -1;
    }
  }

  /** proxy_grpc_call / proxy_grpc_stream: a callout of the current context; its token, or the ABI status when it could not start. */
  private grpcOpen(up: number, un: number, sp: number, sn: number, mp: number, mn: number, hp: number, hn: number, message: Buffer | undefined, timeoutMs: number, tokenPtr: number): number {
    const upstream = this.bytes(up, un);
    const service = this.str(sp, sn);
    const method = this.str(mp, mn);
    const hb = this.bytes(hp, hn);
    if (!upstream || service === undefined || method === undefined || !hb) return WasmResult.InvalidMemoryAccess;
    const metadata = parsePairs(hb);
    if (!metadata) return WasmResult.ParseFailure;
    const target = grpcTarget(this.o.clusters, upstream, (w) => this.warnOnce(`grpc:${w}`, `gRPC callout: ${w}: not supported by rig proxy, ignored`));
    if (typeof target === 'string') {
      this.warnOnce(`grpc:${target}`, `gRPC callout refused: ${target}`);
      return WasmResult.ParseFailure;
    }
    const token = this.nextToken++;
    if (!this.u32(tokenPtr, token)) return WasmResult.InvalidMemoryAccess;
    const origin = this.ctx();
    const g = new GrpcCallout(this, token, origin.root, origin, message !== undefined);
    if (!g.start(this.o.clusters, target, `/${service}/${method}`, metadata, timeoutMs)) return WasmResult.InternalFailure;
    this.grpcCalls.set(token, g);
    if (message) g.send(message, true);
    return WasmResult.Ok;
  }

  /** Calls proxy_on_http_call_response with the answer readable through map types 6/7 and buffer type 4. */
  callHttpResponse(ctx: HostContext, token: number, res: CallResponse | undefined): number | undefined {
    this.callResponse = res;
    try {
      return this.call(ctx, 'proxy_on_http_call_response', ctx.id, token, res ? res.headers.count() : 0, res ? res.body.length : 0, res ? res.trailers.count() : 0);
    } finally {
      this.callResponse = undefined;
    }
  }

  // === memory ===

  private bytes(ptr: number, len: number): Buffer | undefined {
    const buf = this.memory.buffer;
    if (ptr < 0 || len < 0 || ptr + len > buf.byteLength) return undefined;
    return Buffer.from(buf, ptr, len);
  }

  private str(ptr: number, len: number): string | undefined {
    return this.bytes(ptr, len)?.toString('utf8');
  }

  private u32(ptr: number, v: number): boolean {
    if (ptr < 0 || ptr + 4 > this.memory.buffer.byteLength) return false;
    new DataView(this.memory.buffer).setUint32(ptr, v >>> 0, true);
    return true;
  }

  private u64(ptr: number, v: bigint): boolean {
    if (ptr < 0 || ptr + 8 > this.memory.buffer.byteLength) return false;
    new DataView(this.memory.buffer).setBigUint64(ptr, BigInt.asUintN(64, v), true);
    return true;
  }

  /** Copies `data` into memory the module allocates and writes its address and size at retPtr/retSize. */
  private out(data: Buffer, retPtr: number, retSize: number): number {
    let p = 0;
    if (data.length) {
      p = this.malloc(data.length) >>> 0;
      const dst = this.bytes(p, data.length);
      if (!p || !dst) return WasmResult.InvalidMemoryAccess;
      data.copy(dst);
    }
    return this.u32(retPtr, p) && this.u32(retSize, data.length) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  }

  private ctx(): HostContext {
    if (!this.current) throw new Error('a host function was called outside of a callback');
    return this.current;
  }

  /** Logs `msg` as a warning about this plugin, once per `what`. */
  warnOnce(what: string, msg: string): void {
    if (this.warned.has(what)) return;
    this.warned.add(what);
    this.o.log.warn(`wasm plugin ${this.o.name}: ${msg}`);
  }

  /** The headers of map `type`: an HTTP call's answer while its callback runs, else the context's. */
  private map(type: number): HeaderAccess | undefined {
    if (type === MapType.HttpCallResponseHeaders) return this.callResponse?.headers;
    if (type === MapType.HttpCallResponseTrailers) return this.callResponse?.trailers;
    if (type === MapType.GrpcReceiveInitialMetadata || type === MapType.GrpcReceiveTrailingMetadata) return type === this.grpcMapType ? this.grpcMap : undefined;
    return this.ctx().headers(type);
  }

  private pluginLog(level: number, msg: string): void {
    const l = this.o.log;
    const line = `wasm log ${this.o.name} ${this.o.vmId}: ${msg}`;
    if (level <= LogLevel.Trace) l.trace(line);
    else if (level === LogLevel.Debug) l.debug(line);
    else if (level === LogLevel.Info) l.info(line);
    else if (level === LogLevel.Warn) l.warn(line);
    else if (level === LogLevel.Error) l.error(line);
    else l.fatal(line);
  }

  // === host functions ===

  private imports(module: WasmModule): Record<string, Record<string, Fn>> {
    const R = WasmResult;
    const env: Record<string, Fn> = {
      proxy_log: (level: number, p: number, n: number) => {
        const m = this.str(p, n);
        if (m === undefined) return R.InvalidMemoryAccess;
        this.pluginLog(level, m);
        return R.Ok;
      },
      proxy_get_log_level: (ret: number) => (this.u32(ret, LEVELS[this.o.log.level] ?? LogLevel.Info) ? R.Ok : R.InvalidMemoryAccess),
      proxy_get_current_time_nanoseconds: (ret: number) => (this.u64(ret, BigInt(Date.now()) * 1_000_000n) ? R.Ok : R.InvalidMemoryAccess),
      proxy_set_tick_period_milliseconds: (ms: number) => this.ctx().setTickPeriod(ms >>> 0),
      proxy_get_buffer_status: (type: number, lenPtr: number, flagsPtr: number) => {
        const b = this.bufferOf(type);
        if (!b) return R.NotFound;
        return this.u32(lenPtr, b.length) && this.u32(flagsPtr, 0) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_get_buffer_bytes: (type: number, start: number, max: number, retPtr: number, retSize: number) => {
        const b = this.bufferOf(type);
        if (!b) return R.NotFound;
        start >>>= 0;
        max >>>= 0;
        if (start > b.length) return R.BadArgument;
        return this.out(b.subarray(start, Math.min(b.length, start + max)), retPtr, retSize);
      },
      proxy_set_buffer_bytes: (type: number, start: number, size: number, p: number, n: number) => {
        const data = this.bytes(p, n);
        if (!data) return R.InvalidMemoryAccess;
        const b = this.bufferOf(type);
        if (!b) return R.NotFound;
        start = Math.min(start >>> 0, b.length);
        const end = Math.min(b.length, start + (size >>> 0));
        return this.ctx().setBuffer(type, Buffer.concat([b.subarray(0, start), data, b.subarray(end)]));
      },
      // A map the context does not have (yet): no pairs, as Envoy answers in the access log phase; the
      // SDKs treat any other answer as a bug and abort the plugin.
      proxy_get_header_map_pairs: (type: number, retPtr: number, retSize: number) => this.out(serializePairs(this.map(type)?.pairs() ?? []), retPtr, retSize),
      proxy_set_header_map_pairs: (type: number, p: number, n: number) => {
        const m = this.writableMap(type);
        if (!m) return R.BadArgument;
        const b = this.bytes(p, n);
        if (!b) return R.InvalidMemoryAccess;
        const pairs = parsePairs(b);
        if (!pairs) return R.ParseFailure;
        m.setPairs(pairs);
        return R.Ok;
      },
      proxy_get_header_map_size: (type: number, ret: number) => (this.u32(ret, serializePairs(this.map(type)?.pairs() ?? []).length) ? R.Ok : R.InvalidMemoryAccess),
      proxy_get_header_map_value: (type: number, kp: number, kn: number, retPtr: number, retSize: number) => {
        const m = this.map(type);
        const k = this.bytes(kp, kn)?.toString('latin1');
        if (k === undefined) return R.InvalidMemoryAccess;
        const v = m?.get(k.toLowerCase());
        if (v === undefined) return R.NotFound;
        return this.out(Buffer.from(v, 'latin1'), retPtr, retSize);
      },
      proxy_add_header_map_value: (type: number, kp: number, kn: number, vp: number, vn: number) => this.editMap(type, kp, kn, vp, vn, (m, k, v) => m.add(k, v)),
      proxy_replace_header_map_value: (type: number, kp: number, kn: number, vp: number, vn: number) => this.editMap(type, kp, kn, vp, vn, (m, k, v) => m.replace(k, v)),
      proxy_remove_header_map_value: (type: number, kp: number, kn: number) => this.editMap(type, kp, kn, 0, 0, (m, k) => m.remove(k)),
      proxy_send_local_response: (status: number, dp: number, dn: number, bp: number, bn: number, hp: number, hn: number, grpc: number) => {
        const details = this.str(dp, dn);
        const body = this.bytes(bp, bn);
        const hb = this.bytes(hp, hn);
        if (details === undefined || !body || !hb) return R.InvalidMemoryAccess;
        const pairs = parsePairs(hb);
        if (!pairs) return R.ParseFailure;
        const headers = new MapAccess({});
        for (const [k, v] of pairs) headers.add(k.toLowerCase(), v);
        // The body's bytes as they are, copied out of linear memory the plugin may reuse.
        return this.ctx().sendLocalResponse({ status, body: Buffer.from(body), headers: headers.m, details: details || 'wasm_local_reply', grpcStatus: grpc >= 0 ? grpc : undefined });
      },
      proxy_continue_stream: (type: number) => this.ctx().continueStream(type),
      proxy_close_stream: (type: number) => this.ctx().closeStream(type),
      // ABI 0.1.0 names some SDKs still import.
      proxy_continue_request: () => this.ctx().continueStream(0),
      proxy_continue_response: () => this.ctx().continueStream(1),
      proxy_get_property: (pp: number, pn: number, retPtr: number, retSize: number) => {
        const path = this.bytes(pp, pn);
        if (!path) return R.InvalidMemoryAccess;
        const v = this.ctx().property(splitPath(path));
        return v === undefined ? R.NotFound : this.out(v, retPtr, retSize);
      },
      proxy_set_property: (pp: number, pn: number, vp: number, vn: number) => {
        const path = this.bytes(pp, pn);
        const v = this.bytes(vp, vn);
        if (!path || !v) return R.InvalidMemoryAccess;
        const ctx = this.ctx();
        const p = splitPath(path);
        return ctx.setProperty(p, Buffer.from(v), this.foreign.declared(ctx.root.id, p.join('.')));
      },
      proxy_get_shared_data: (kp: number, kn: number, retPtr: number, retSize: number, casPtr: number) => {
        const k = this.str(kp, kn);
        if (k === undefined) return R.InvalidMemoryAccess;
        const v = getSharedData(this.o.vmId, k);
        if (!v) return R.NotFound;
        const r = this.out(v.value, retPtr, retSize);
        return r === R.Ok && !this.u32(casPtr, v.cas) ? R.InvalidMemoryAccess : r;
      },
      proxy_set_shared_data: (kp: number, kn: number, vp: number, vn: number, cas: number) => {
        const k = this.str(kp, kn);
        const v = this.bytes(vp, vn);
        if (k === undefined || !v) return R.InvalidMemoryAccess;
        return setSharedData(this.o.vmId, k, Buffer.from(v), cas >>> 0);
      },
      proxy_register_shared_queue: (np: number, nn: number, ret: number) => {
        const name = this.str(np, nn);
        if (name === undefined) return R.InvalidMemoryAccess;
        const root = this.ctx().root;
        const id = registerSharedQueue(this.o.vmId, name, () => {
          if (this.contexts.get(root.id) === root) this.call(root, 'proxy_on_queue_ready', root.id, id);
        });
        return this.u32(ret, id) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_resolve_shared_queue: (vp: number, vn: number, np: number, nn: number, ret: number) => {
        const vmId = this.str(vp, vn);
        const name = this.str(np, nn);
        if (vmId === undefined || name === undefined) return R.InvalidMemoryAccess;
        const id = resolveSharedQueue(vmId, name);
        if (id === undefined) return R.NotFound;
        return this.u32(ret, id) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_enqueue_shared_queue: (id: number, p: number, n: number) => {
        const q = sharedQueue(id);
        const data = this.bytes(p, n);
        if (!q) return R.NotFound;
        if (!data) return R.InvalidMemoryAccess;
        q.items.push(Buffer.from(data));
        queueMicrotask(q.ready);
        return R.Ok;
      },
      proxy_dequeue_shared_queue: (id: number, retPtr: number, retSize: number) => {
        const q = sharedQueue(id);
        if (!q) return R.NotFound;
        const item = q.items.shift();
        return item === undefined ? R.Empty : this.out(item, retPtr, retSize);
      },
      proxy_define_metric: (type: number, np: number, nn: number, ret: number) => {
        const name = this.str(np, nn);
        if (name === undefined) return R.InvalidMemoryAccess;
        const id = this.metrics.define(type, name);
        if (id === undefined) return R.BadArgument;
        return this.u32(ret, id) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_increment_metric: (id: number, by: bigint) => this.metrics.increment(id, Number(by)),
      proxy_record_metric: (id: number, v: bigint) => this.metrics.record(id, Number(BigInt.asUintN(64, v))),
      proxy_get_metric: (id: number, ret: number) => {
        const v = this.metrics.value(id);
        if (v === undefined) return R.NotFound;
        return this.u64(ret, BigInt(Math.round(v))) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_http_call: (up: number, un: number, hp: number, hn: number, bp: number, bn: number, tp: number, tn: number, timeout: number, tokenPtr: number) => this.httpCall(up, un, hp, hn, bp, bn, tp, tn, timeout >>> 0, tokenPtr),
      proxy_grpc_call: (up: number, un: number, sp: number, sn: number, mp: number, mn: number, hp: number, hn: number, msgp: number, msgn: number, timeout: number, tokenPtr: number) => {
        const message = this.bytes(msgp, msgn);
        if (!message) return R.InvalidMemoryAccess;
        return this.grpcOpen(up, un, sp, sn, mp, mn, hp, hn, Buffer.from(message), timeout >>> 0, tokenPtr);
      },
      proxy_grpc_stream: (up: number, un: number, sp: number, sn: number, mp: number, mn: number, hp: number, hn: number, tokenPtr: number) => this.grpcOpen(up, un, sp, sn, mp, mn, hp, hn, undefined, 0, tokenPtr),
      proxy_grpc_send: (token: number, p: number, n: number, end: number) => {
        const g = this.grpcCalls.get(token);
        if (!g) return R.NotFound;
        if (g.unary) return R.BadArgument;
        const message = this.bytes(p, n);
        if (!message) return R.InvalidMemoryAccess;
        g.send(Buffer.from(message), end !== 0);
        return R.Ok;
      },
      // As Envoy: cancel resets a stream (or a call); close half-closes a stream and cancels a call.
      proxy_grpc_cancel: (token: number) => {
        const g = this.grpcCalls.get(token);
        if (!g) return R.NotFound;
        g.cancel();
        this.grpcCalls.delete(token);
        return R.Ok;
      },
      proxy_grpc_close: (token: number) => {
        const g = this.grpcCalls.get(token);
        if (!g) return R.NotFound;
        if (g.unary) {
          g.cancel();
          this.grpcCalls.delete(token);
        } else {
          g.closeLocal();
          if (g.ended) this.grpcCalls.delete(token);
        }
        return R.Ok;
      },
      proxy_get_status: (codePtr: number, msgPtr: number, msgSize: number) => {
        if (!this.u32(codePtr, this.statusCode)) return R.InvalidMemoryAccess;
        return this.out(this.statusMessage, msgPtr, msgSize);
      },
      proxy_set_effective_context: (id: number) => {
        const c = this.contexts.get(id);
        if (!c) return R.BadArgument;
        this.current = c;
        return R.Ok;
      },
      proxy_call_foreign_function: (np: number, nn: number, ap: number, an: number, retPtr: number, retSize: number) => {
        const name = this.str(np, nn);
        const args = this.bytes(ap, an);
        if (name === undefined || !args) return R.InvalidMemoryAccess;
        if (!this.foreign.has(name)) {
          this.warnOnce(`foreign:${name}`, `foreign function ${name} is not implemented in rig proxy; it returns NotFound`);
          return R.NotFound;
        }
        const r = this.foreign.call(name, Buffer.from(args), this.ctx());
        if (r.result !== R.Ok) return r.result;
        return this.out(r.data ?? Buffer.alloc(0), retPtr, retSize);
      },
      proxy_done: () => R.Ok,
      // Emscripten-built plugins (the C++ SDK) tell the host of memory growth; nothing to do here, as in Envoy.
      emscripten_notify_memory_growth: () => undefined,
    };
    const wasi: Record<string, Fn> = {
      fd_write: (fd: number, iovs: number, n: number, written: number) => {
        if (fd !== 1 && fd !== 2) return Errno.Badf;
        const dv = new DataView(this.memory.buffer);
        const parts: Buffer[] = [];
        for (let i = 0; i < n; i++) {
          const b = this.bytes(dv.getUint32(iovs + i * 8, true), dv.getUint32(iovs + i * 8 + 4, true));
          if (!b) return Errno.Inval;
          parts.push(b);
        }
        const all = Buffer.concat(parts);
        const text = all.toString('utf8').replace(/\n$/, '');
        if (text) this.pluginLog(fd === 1 ? LogLevel.Info : LogLevel.Error, text);
        return this.u32(written, all.length) ? Errno.Success : Errno.Inval;
      },
      // Envoy's host only logs it (Context::error, at trace); the module's code goes on after it.
      proc_exit: (code: number) => {
        this.o.log.debug(`wasm plugin ${this.o.name}: proc_exit(${code}); the VM goes on (as in Envoy)`);
      },
      environ_sizes_get: (countPtr: number, sizePtr: number) => {
        const e = this.environ();
        return this.u32(countPtr, e.length) && this.u32(sizePtr, e.reduce((s, b) => s + b.length, 0)) ? Errno.Success : Errno.Inval;
      },
      environ_get: (ptrs: number, buf: number) => {
        let off = buf;
        for (const [i, b] of this.environ().entries()) {
          const dst = this.bytes(off, b.length);
          if (!dst || !this.u32(ptrs + i * 4, off)) return Errno.Inval;
          b.copy(dst);
          off += b.length;
        }
        return Errno.Success;
      },
      args_sizes_get: (c: number, s: number) => (this.u32(c, 0) && this.u32(s, 0) ? Errno.Success : Errno.Inval),
      args_get: () => Errno.Success,
      clock_time_get: (id: number, _precision: bigint, ret: number) => {
        const t = id === 0 ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint();
        return this.u64(ret, t) ? Errno.Success : Errno.Inval;
      },
      random_get: (p: number, n: number) => {
        const b = this.bytes(p, n);
        if (!b) return Errno.Inval;
        crypto.randomFillSync(b);
        return Errno.Success;
      },
      sched_yield: () => Errno.Success,
      // No preopened directories: wasi-libc stops looking at the first EBADF.
      fd_prestat_get: () => Errno.Badf,
    };
    const provided: Record<string, Record<string, Fn>> = { env, wasi_snapshot_preview1: wasi, wasi_unstable: wasi };
    const out: Record<string, Record<string, Fn>> = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.kind !== 'function') continue;
      const fn = provided[imp.module]?.[imp.name];
      (out[imp.module] ??= {})[imp.name] = fn ? this.guarded(imp.module, imp.name, fn) : this.unimplemented(imp.module, imp.name);
    }
    return out;
  }

  /**
   * `fn` answering its own error (a bad argument it did not foresee, a bug) with an error code, as
   * Envoy's host functions answer, rather than failing the VM; a trap in a call into the module it
   * made (the module's allocator) goes on up and fails the VM.
   */
  private guarded(module: string, name: string, fn: Fn): Fn {
    const f = fn as (...a: unknown[]) => unknown;
    const code = module.startsWith('wasi') ? Errno.Inval : WasmResult.InternalFailure;
    return (...args: unknown[]) => {
      try {
        return f(...args);
      } catch (e) {
        if (isTrap(e)) throw e;
        this.warnOnce(`error ${module}.${name}`, `host function ${module}.${name} failed (${(e as Error).message}); it returns ${module.startsWith('wasi') ? 'EINVAL' : 'InternalFailure'} and the VM goes on`);
        return code;
      }
    };
  }

  /** A host function rig proxy does not implement: Unimplemented (WASI: ENOSYS), with one warning naming it. */
  private unimplemented(module: string, name: string): Fn {
    const wasi = module.startsWith('wasi');
    return () => {
      this.warnOnce(`${module}.${name}`, `host function ${module}.${name} is not implemented in rig proxy; it returns ${wasi ? 'ENOSYS' : 'Unimplemented'}`);
      return wasi ? Errno.Nosys : WasmResult.Unimplemented;
    };
  }

  private environ(): Buffer[] {
    return [...this.o.env].map(([k, v]) => Buffer.from(`${k}=${v}\0`));
  }

  private bufferOf(type: number): Buffer | undefined {
    if (type === BufferType.HttpCallResponseBody) return this.callResponse?.body;
    if (type === BufferType.GrpcReceiveBuffer) return this.grpcBuffer;
    if (type === BufferType.VmConfiguration) return this.o.vmConfiguration;
    return this.ctx().buffer(type);
  }

  private writableMap(type: number): HeaderAccess | undefined {
    if (type === MapType.HttpCallResponseHeaders || type === MapType.HttpCallResponseTrailers || type === MapType.GrpcReceiveInitialMetadata || type === MapType.GrpcReceiveTrailingMetadata) return undefined;
    return this.ctx().headers(type, true);
  }

  /** A header edit; names and values are bytes, kept one latin1 char per byte as the proxy's header maps keep them. */
  private editMap(type: number, kp: number, kn: number, vp: number, vn: number, edit: (m: HeaderAccess, k: string, v: string) => void): number {
    const k = this.bytes(kp, kn)?.toString('latin1');
    const v = this.bytes(vp, vn)?.toString('latin1');
    if (k === undefined || v === undefined) return WasmResult.InvalidMemoryAccess;
    const m = this.writableMap(type);
    // As Envoy: a map the context does not have (now) is a bad argument.
    if (!m) return WasmResult.BadArgument;
    edit(m, k.toLowerCase(), v);
    return WasmResult.Ok;
  }

  private httpCall(up: number, un: number, hp: number, hn: number, bp: number, bn: number, tp: number, tn: number, timeoutMs: number, tokenPtr: number): number {
    const cluster = this.str(up, un);
    const hb = this.bytes(hp, hn);
    const body = this.bytes(bp, bn);
    const tb = this.bytes(tp, tn);
    if (cluster === undefined || !hb || !body || !tb) return WasmResult.InvalidMemoryAccess;
    const pairs = parsePairs(hb);
    if (!pairs) return WasmResult.ParseFailure;
    if (!this.o.clusters.get(cluster)) return WasmResult.BadArgument;
    const headers: Record<string, string | string[]> = {};
    let method: string | undefined, path: string | undefined, authority: string | undefined;
    for (const [key, v] of pairs) {
      const k = key.toLowerCase();
      if (k === ':method') method = v;
      else if (k === ':path') path = v;
      else if (k === ':authority') authority = v;
      else if (k[0] !== ':') {
        const cur = headers[k];
        headers[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
      }
    }
    if (!method || !path || !authority) return WasmResult.BadArgument;
    headers.host = authority;
    if (body.length) headers['content-length'] = String(body.length);
    const token = this.nextToken++;
    if (!this.u32(tokenPtr, token)) return WasmResult.InvalidMemoryAccess;
    const abort = new AbortController();
    const origin = this.ctx();
    this.calls.set(token, { root: origin.root, origin, abort });
    requestThroughCluster(this.o.clusters, { cluster, method, path, headers, body: body.length ? Buffer.from(body) : undefined, timeoutMs: timeoutMs || 5000, signal: abort.signal }).then(
      (res) => {
        const h = new MapAccess({ ':status': String(res.status) });
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.m[k] = v;
        this.answer(token, { headers: h, body: res.body, trailers: new MapAccess({ ...res.trailers }) });
      },
      (e: Error) => {
        if (abort.signal.aborted) return;
        this.o.log.debug(`wasm plugin ${this.o.name}: http call to ${cluster} failed: ${e.message}`);
        this.answer(token, undefined);
      },
    )
      // Resuming or answering the stream failed: logged, never an unhandled rejection.
      .catch((e: Error) => this.o.log.error(`wasm plugin ${this.o.name}: after the http call to ${cluster}: ${e.message}`));
    return WasmResult.Ok;
  }
}

/** A property path: segments separated by NUL. */
function splitPath(b: Buffer): string[] {
  const s = b.toString('utf8');
  return (s.endsWith('\0') ? s.slice(0, -1) : s).split('\0');
}
