// Envoy's foreign functions (proxy_call_foreign_function) that plugins use: CEL expressions
// (expr_create, expr_evaluate, expr_delete: Istio's attributegen classifies requests with them),
// zlib compress/uncompress, clear_route_cache, declare_property and set_envoy_filter_state
// (wasm-state.ts), sign and verify_signature (wasm-crypto.ts). Arguments that are protobuf messages
// are Envoy's (wasm-foreign-args.ts). Expressions belong to the root context that
// created them and are evaluated against the stream of the context that calls expr_evaluate,
// over the same attributes as Telemetry's CEL. A value comes back as Envoy serializes it:
// strings and bytes as they are, integers and doubles as 8 little-endian bytes, a bool as one
// byte, maps and lists as a google.protobuf.Struct / ListValue.
import zlib from 'node:zlib';
import type { Logger } from '../../../core/log.ts';
import { encodeMessage } from '../../../envoy/index.ts';
import { compileCel, type CelProgram } from '../../telemetry/cel-attributes.ts';
import type { RequestHead, ResponseHead } from '../filter.ts';
import type { StreamInfo } from '../../stream-info.ts';
import { WasmResult } from './wasm-abi.ts';
import { sign, verifySignature } from './wasm-crypto.ts';
import { decodeArgs, type DeclarePropertyArguments, type SetEnvoyFilterStateArguments } from './wasm-foreign-args.ts';
import { setEnvoyFilterState, type PropertyPrototype, type StateOwner } from './wasm-state.ts';

/** The stream an expression is evaluated against. */
export interface ExpressionInput {
  readonly info: StreamInfo;
  readonly request: RequestHead | undefined;
  readonly response: ResponseHead | undefined;
}

/** What a foreign function sees of the context calling it (a root context has no stream, hence no state). */
export interface ForeignCaller {
  readonly id: number;
  /** The root context (itself for a root context): expressions and declarations are looked up per root. */
  readonly root: { readonly id: number };
  /** The caller's stream; undefined for a root context. */
  expressionInput(): ExpressionInput | undefined;
  /** Envoy's clearRouteCache on the caller's stream; undefined where there is none. */
  clearRouteCache?(): void;
  /** Where the caller's stream keeps filter state; absent for a root context. */
  readonly state?: StateOwner;
}

export interface ForeignResult {
  readonly result: number;
  readonly data?: Buffer;
}

const NAMES = new Set(['expr_create', 'expr_evaluate', 'expr_delete', 'compress', 'uncompress', 'clear_route_cache', 'declare_property', 'set_envoy_filter_state', 'sign', 'verify_signature']);

/** The foreign functions of one VM. */
export class ForeignFunctions {
  private readonly expressions = new Map<number, { next: number; programs: Map<number, CelProgram> }>();
  /** Property declarations by the context that made them (as Envoy; proxy_set_property looks in its root's). */
  private readonly declarations = new Map<number, Map<string, PropertyPrototype>>();
  private readonly log: Logger;
  private readonly warnOnce: (what: string, msg: string) => void;

  constructor(log: Logger, warnOnce: (what: string, msg: string) => void) {
    this.log = log;
    this.warnOnce = warnOnce;
  }

  /** Whether rig proxy has `name` (Envoy answers NotFound for a function it does not have). */
  has(name: string): boolean {
    return NAMES.has(name);
  }

  call(name: string, args: Buffer, caller: ForeignCaller): ForeignResult {
    switch (name) {
      case 'expr_create':
        return this.create(args.toString('utf8'), caller);
      case 'expr_evaluate':
        return this.evaluate(args, caller);
      case 'expr_delete': {
        if (args.length !== 4) return { result: WasmResult.BadArgument };
        this.expressions.get(caller.root.id)?.programs.delete(args.readUInt32LE(0));
        return { result: WasmResult.Ok };
      }
      case 'compress':
        return { result: WasmResult.Ok, data: zlib.deflateSync(args) };
      case 'uncompress':
        try {
          return { result: WasmResult.Ok, data: zlib.inflateSync(args) };
        } catch {
          return { result: WasmResult.SerializationFailure };
        }
      case 'clear_route_cache':
        caller.clearRouteCache?.();
        return { result: WasmResult.Ok };
      case 'declare_property':
        return { result: this.declareProperty(args, caller) };
      case 'set_envoy_filter_state': {
        const a = decodeArgs<SetEnvoyFilterStateArguments>('SetEnvoyFilterStateArguments', args);
        if (!a) return { result: WasmResult.BadArgument };
        // As Envoy: a root context has no stream info.
        if (!caller.state) return { result: WasmResult.NotFound };
        return { result: setEnvoyFilterState(caller.state, a.path, a.value, a.span, this.warnOnce) };
      }
      case 'sign':
        return sign(args);
      case 'verify_signature':
        return verifySignature(args);
      default:
        return { result: WasmResult.NotFound };
    }
  }

  /** The declaration proxy_set_property follows for `name` in a context of root `rootId`. */
  declared(rootId: number, name: string): PropertyPrototype | undefined {
    return this.declarations.get(rootId)?.get(name);
  }

  /** A context is gone: so are its declarations and, for a root context, its expressions. */
  drop(id: number): void {
    this.expressions.delete(id);
    this.declarations.delete(id);
  }

  /** declare_property: BadArgument when the name is declared already (a declaration is never replaced, as Envoy's). */
  private declareProperty(args: Buffer, caller: ForeignCaller): number {
    const a = decodeArgs<DeclarePropertyArguments>('DeclarePropertyArguments', args);
    if (!a) return WasmResult.BadArgument;
    let mine = this.declarations.get(caller.id);
    if (!mine) this.declarations.set(caller.id, (mine = new Map()));
    if (mine.has(a.name)) return WasmResult.BadArgument;
    mine.set(a.name, { readonly: a.readonly, type: a.type, schema: Buffer.from(a.schema), span: a.span });
    return WasmResult.Ok;
  }

  private create(expression: string, caller: ForeignCaller): ForeignResult {
    let program: CelProgram;
    try {
      program = compileCel(expression);
    } catch (e) {
      this.log.info(`wasm expr_create parse error: ${(e as Error).message}`);
      return { result: WasmResult.BadArgument };
    }
    let root = this.expressions.get(caller.root.id);
    if (!root) this.expressions.set(caller.root.id, (root = { next: 0, programs: new Map() }));
    while (root.programs.has(root.next)) root.next = (root.next + 1) >>> 0;
    const token = root.next;
    root.next = (root.next + 1) >>> 0;
    root.programs.set(token, program);
    const data = Buffer.alloc(4);
    data.writeUInt32LE(token, 0);
    return { result: WasmResult.Ok, data };
  }

  private evaluate(args: Buffer, caller: ForeignCaller): ForeignResult {
    if (args.length !== 4) return { result: WasmResult.BadArgument };
    const program = this.expressions.get(caller.root.id)?.programs.get(args.readUInt32LE(0));
    if (!program) return { result: WasmResult.NotFound };
    const input = caller.expressionInput();
    if (!input) return { result: WasmResult.InternalFailure };
    let value: unknown;
    try {
      value = program(input.info, input.request, input.response);
    } catch (e) {
      this.log.debug(`wasm expr_evaluate error: ${(e as Error).message}`);
      return { result: WasmResult.InternalFailure };
    }
    const data = serializeCelValue(value);
    return data ? { result: WasmResult.Ok, data } : { result: WasmResult.SerializationFailure };
  }
}

/** A CEL value as Envoy's serializeValue writes it; undefined for what it cannot serialize (null, timestamps, durations). */
export function serializeCelValue(v: unknown): Buffer | undefined {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (typeof v === 'boolean') return Buffer.of(v ? 1 : 0);
  if (typeof v === 'bigint') {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt.asIntN(64, v));
    return b;
  }
  if (typeof v === 'number') {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    return b;
  }
  const uint = unsignedValue(v);
  if (uint !== undefined) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, uint));
    return b;
  }
  const json = toJson(v);
  if (Array.isArray(json)) return Buffer.from(encodeMessage('google.protobuf.ListValue', json as never));
  if (json && typeof json === 'object') return Buffer.from(encodeMessage('google.protobuf.Struct', json as never));
  return undefined;
}

/** cel-js's uint: an instance of its own class holding the value (plain objects are CEL maps). */
function unsignedValue(v: unknown): bigint | undefined {
  if (!v || typeof v !== 'object' || Object.getPrototypeOf(v) === Object.prototype || !('value' in v)) return undefined;
  const x = (v as { value: unknown }).value;
  return typeof x === 'bigint' || typeof x === 'number' ? BigInt(x) : undefined;
}

/** A map or list as google.protobuf.Value's JSON (numbers as doubles, bytes as base64, as Envoy's exportValue). */
function toJson(v: unknown): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(toJson);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), toJson(x)]));
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') {
    const uint = unsignedValue(v);
    if (uint !== undefined) return Number(uint);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  }
  return undefined;
}
