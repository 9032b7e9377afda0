// The Lua VM: Lua 5.4 compiled to WebAssembly (wasmoon), driven through its raw C API. One wasm
// module per process, instantiated when this module loads (~20 ms, ~9 MB resident; lua-filter.ts
// loads it only for config that names the filter); each compiled script gets its own lua_State in it. Strings cross the boundary as bytes in wasm memory (binary safe, for bodies).
//
// Why the raw exports (`_lua_*`) and not wasmoon's engine API: per request, an envoy_on_request that
// reads one header and adds another costs ~3 µs this way against ~8-12 µs through the engine's
// ccall wrappers (and ~14 µs in fengari, Lua 5.3 in plain JS; measured on this machine).
import { createRequire } from 'node:module';
import type * as Wasmoon from 'wasmoon';

const { LuaWasm } = createRequire(import.meta.url)('wasmoon') as typeof Wasmoon;

/** The C API functions used here, as wasm exports (pointers and sizes are numbers). */
interface LuaExports {
  HEAPU8: Uint8Array;
  HEAPU32: Uint32Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _luaL_newstate(): number;
  _luaL_openlibs(L: number): void;
  _lua_close(L: number): void;
  _luaL_loadbufferx(L: number, buf: number, size: number, name: number, mode: number): number;
  _lua_pcallk(L: number, nargs: number, nres: number, errfunc: number, ctx: number, k: number): number;
  _lua_newthread(L: number): number;
  _lua_resume(L: number, from: number, nargs: number, nres: number): number;
  _lua_resetthread(L: number): number;
  _luaL_ref(L: number, t: number): number;
  _luaL_unref(L: number, t: number, ref: number): void;
  _lua_rawgeti(L: number, idx: number, n: bigint): number;
  _lua_gettop(L: number): number;
  _lua_settop(L: number, idx: number): void;
  _lua_pushvalue(L: number, idx: number): void;
  _lua_type(L: number, idx: number): number;
  _lua_pushnil(L: number): void;
  _lua_pushnumber(L: number, n: number): void;
  _lua_pushinteger(L: number, n: bigint): void;
  _lua_pushboolean(L: number, b: number): void;
  _lua_pushlstring(L: number, s: number, len: number): number;
  _lua_pushcclosure(L: number, fn: number, n: number): void;
  _lua_tolstring(L: number, idx: number, len: number): number;
  _lua_tonumberx(L: number, idx: number, isnum: number): number;
  _lua_toboolean(L: number, idx: number): number;
  _lua_isinteger(L: number, idx: number): number;
  _lua_createtable(L: number, narr: number, nrec: number): void;
  _lua_settable(L: number, idx: number): void;
  _lua_rawseti(L: number, idx: number, n: bigint): void;
  _lua_setfield(L: number, idx: number, k: number): void;
  _lua_getglobal(L: number, name: number): number;
  _lua_setglobal(L: number, name: number): void;
  _lua_next(L: number, idx: number): number;
  _lua_error(L: number): number;
  _luaL_where(L: number, level: number): void;
  _lua_concat(L: number, n: number): void;
  _luaL_traceback(L: number, L1: number, msg: number, level: number): void;
}

const wasm: Wasmoon.LuaWasm = await LuaWasm.initialize();
const m = wasm.module as unknown as LuaExports & { addFunction(fn: (L: number) => number, sig: string): number };

export const LUA_OK = 0;
export const LUA_YIELD = 1;
export const LUA_REGISTRYINDEX = -1001000;
export const T_NIL = 0;
export const T_BOOLEAN = 1;
export const T_NUMBER = 3;
export const T_STRING = 4;
export const T_TABLE = 5;
export const T_FUNCTION = 6;

/** Scratch memory for strings going into Lua (grown on demand) and for out-parameters. */
let scratchSize = 4096;
let scratch = m._malloc(scratchSize);
const outp = m._malloc(8);
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

function reserve(n: number): number {
  if (n > scratchSize) {
    m._free(scratch);
    scratchSize = Math.max(n, scratchSize * 2);
    scratch = m._malloc(scratchSize);
  }
  return scratch;
}

/** Pushes a JS string (UTF-8), copying short ASCII strings by hand: TextEncoder costs more than the copy below ~64 bytes. */
export function pushString(L: number, s: string): void {
  const n = s.length;
  if (n < 64) {
    const h = m.HEAPU8;
    let j = 0;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (c > 127) break;
      h[scratch + j] = c;
    }
    if (j === n) {
      m._lua_pushlstring(L, scratch, n);
      return;
    }
  }
  const p = reserve(n * 3 + 1);
  const w = utf8.encodeInto(s, m.HEAPU8.subarray(p, p + n * 3 + 1)).written;
  m._lua_pushlstring(L, p, w);
}

export function pushBytes(L: number, b: Uint8Array): void {
  const p = reserve(b.length + 1);
  m.HEAPU8.set(b, p);
  m._lua_pushlstring(L, p, b.length);
}

/** Reads the string (or number, converted) at `idx`; undefined for other types. */
export function toString(L: number, idx: number): string | undefined {
  const p = m._lua_tolstring(L, idx, outp);
  if (!p) return undefined;
  const n = m.HEAPU32[outp >> 2]!;
  const h = m.HEAPU8;
  if (n < 64) {
    let s = '';
    for (let j = p; j < p + n; j++) {
      const c = h[j]!;
      if (c > 127) return utf8Decoder.decode(h.subarray(p, p + n));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8Decoder.decode(h.subarray(p, p + n));
}

/** Reads the string at `idx` as bytes (a copy); undefined for other types. */
export function toBytes(L: number, idx: number): Buffer | undefined {
  const p = m._lua_tolstring(L, idx, outp);
  if (!p) return undefined;
  return Buffer.from(m.HEAPU8.subarray(p, p + m.HEAPU32[outp >> 2]!));
}

export function typeOf(L: number, idx: number): number {
  return m._lua_type(L, idx);
}

export function toNumber(L: number, idx: number): number {
  return m._lua_tonumberx(L, idx, 0);
}

export function toBoolean(L: number, idx: number): boolean {
  return m._lua_toboolean(L, idx) !== 0;
}

export function top(L: number): number {
  return m._lua_gettop(L);
}

export function pushNil(L: number): void {
  m._lua_pushnil(L);
}

export function pushBoolean(L: number, b: boolean): void {
  m._lua_pushboolean(L, b ? 1 : 0);
}

export function pushNumber(L: number, n: number): void {
  if (Number.isInteger(n)) m._lua_pushinteger(L, BigInt(n));
  else m._lua_pushnumber(L, n);
}

/** Pushes a JS value: objects and arrays become tables, recursively (metadata, httpCall answers). */
export function pushValue(L: number, v: unknown): void {
  if (v === undefined || v === null) m._lua_pushnil(L);
  else if (typeof v === 'string') pushString(L, v);
  else if (typeof v === 'number') pushNumber(L, v);
  else if (typeof v === 'boolean') pushBoolean(L, v);
  else if (Buffer.isBuffer(v)) pushBytes(L, v);
  else if (Array.isArray(v)) {
    m._lua_createtable(L, v.length, 0);
    v.forEach((x, i) => {
      pushValue(L, x);
      m._lua_rawseti(L, -2, BigInt(i + 1));
    });
  } else if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    m._lua_createtable(L, 0, Object.keys(o).length);
    for (const [k, x] of Object.entries(o)) {
      pushString(L, k);
      pushValue(L, x);
      m._lua_settable(L, -3);
    }
  } else pushString(L, String(v));
}

/** Reads the value at `idx`: tables become objects (or arrays when keyed 1..n), recursively. */
export function readValue(L: number, idx: number, depth = 0): unknown {
  const t = m._lua_type(L, idx);
  if (t === T_NIL || t < 0) return undefined;
  if (t === T_BOOLEAN) return toBoolean(L, idx);
  if (t === T_NUMBER) return toNumber(L, idx);
  if (t === T_STRING) return toString(L, idx);
  if (t !== T_TABLE || depth > 32) return undefined;
  const abs = idx < 0 ? m._lua_gettop(L) + idx + 1 : idx;
  const out: Record<string, unknown> = {};
  const arr: unknown[] = [];
  let isArray = true;
  m._lua_pushnil(L);
  while (m._lua_next(L, abs) !== 0) {
    const kt = m._lua_type(L, -2);
    const key = kt === T_NUMBER ? toNumber(L, -2) : kt === T_STRING ? (m._lua_pushvalue(L, -2), toStringPop(L)) : undefined;
    const val = readValue(L, -1, depth + 1);
    if (typeof key === 'number' && Number.isInteger(key) && key >= 1) arr[key - 1] = val;
    else isArray = false;
    if (key !== undefined) out[String(key)] = val;
    m._lua_settop(L, -2);
  }
  return isArray && arr.length > 0 ? arr : out;
}

function toStringPop(L: number): string | undefined {
  const s = toString(L, -1);
  m._lua_settop(L, -2);
  return s;
}

/** Raises a Lua error with `msg`, prefixed with the script position `level` calls up (as luaL_error does). */
export function raise(L: number, msg: string, level = 2): number {
  m._luaL_where(L, level);
  pushString(L, msg);
  m._lua_concat(L, 2);
  raising = true;
  return m._lua_error(L);
}

/** lua_error unwinds through JS as an exception: set while it is ours, so that hostFunction lets it pass. */
let raising = false;

/** A JS function callable from Lua: it reads its arguments with the helpers above and returns how many results it pushed. */
export type HostFunction = (L: number) => number;

/** Wraps a JS function into a wasm function pointer once (the table grows per call: register at module load only). */
export function hostFunction(fn: HostFunction): number {
  return m.addFunction((L) => {
    try {
      return fn(L);
    } catch (e) {
      if (raising) {
        raising = false;
        throw e;
      }
      // A JS exception must not unwind the Lua stack (it would leave the state broken): a Lua error instead.
      return raise(L, `rig proxy: ${(e as Error)?.message ?? String(e)}`);
    }
  }, 'ii');
}

function cstring(s: string): number {
  const b = utf8.encode(s + '\0');
  const p = m._malloc(b.length);
  m.HEAPU8.set(b, p);
  return p;
}

/** One Lua state: the standard libraries, globals set from JS, chunks loaded and run, coroutines. */
export class LuaState {
  readonly L: number;
  private closed = false;
  private readonly threads: { T: number; ref: number }[] = [];

  constructor() {
    this.L = m._luaL_newstate();
    m._luaL_openlibs(this.L);
  }

  setGlobalFunction(name: string, fn: number): void {
    m._lua_pushcclosure(this.L, fn, 0);
    const p = cstring(name);
    m._lua_setglobal(this.L, p);
    m._free(p);
  }

  setGlobalString(name: string, value: string): void {
    pushString(this.L, value);
    const p = cstring(name);
    m._lua_setglobal(this.L, p);
    m._free(p);
  }

  /** Loads and runs `code` as chunk `name`; the error message (with chunk name and line) when it fails. */
  run(code: string | Buffer, name: string): string | undefined {
    const L = this.L;
    const bytes = typeof code === 'string' ? Buffer.from(code) : code;
    const p = m._malloc(bytes.length + 1);
    m.HEAPU8.set(bytes, p);
    const np = cstring(name);
    const mode = cstring('t');
    let rc = m._luaL_loadbufferx(L, p, bytes.length, np, mode);
    m._free(p);
    m._free(np);
    m._free(mode);
    if (rc === LUA_OK) rc = m._lua_pcallk(L, 0, 0, 0, 0, 0);
    if (rc === LUA_OK) return undefined;
    const msg = toString(L, -1) ?? 'unknown error';
    m._lua_settop(L, 0);
    return msg;
  }

  /** A registry reference to global `name` when it is a function, else undefined. */
  functionRef(name: string): number | undefined {
    return this.globalRef(name, T_FUNCTION);
  }

  /** A registry reference to global `name` when it has type `type` (a table by default), else undefined. */
  globalRef(name: string, type = T_TABLE): number | undefined {
    const p = cstring(name);
    const t = m._lua_getglobal(this.L, p);
    m._free(p);
    if (t !== type) {
      m._lua_settop(this.L, -2);
      return undefined;
    }
    return m._luaL_ref(this.L, LUA_REGISTRYINDEX);
  }

  /** A coroutine (from a pool of finished ones) with function `fnRef` and argument `argRef` pushed, ready to resume. */
  startThread(fnRef: number, argRef: number): LuaThread {
    const t = this.threads.pop() ?? this.newThread();
    m._lua_rawgeti(t.T, LUA_REGISTRYINDEX, BigInt(fnRef));
    m._lua_rawgeti(t.T, LUA_REGISTRYINDEX, BigInt(argRef));
    return new LuaThread(this, t.T, t.ref);
  }

  private newThread(): { T: number; ref: number } {
    const T = m._lua_newthread(this.L);
    return { T, ref: m._luaL_ref(this.L, LUA_REGISTRYINDEX) };
  }

  /** A thread whose coroutine finished: reset and reused; one that died in error or was abandoned is dropped. */
  release(T: number, ref: number, reusable: boolean): void {
    if (this.closed) return;
    if (reusable && this.threads.length < 64 && m._lua_resetthread(T) === LUA_OK) this.threads.push({ T, ref });
    else m._luaL_unref(this.L, LUA_REGISTRYINDEX, ref);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    m._lua_close(this.L);
  }
}

/** One run of a script function as a coroutine. */
export class LuaThread {
  readonly state: LuaState;
  readonly T: number;
  private readonly ref: number;
  private nargs = 1;

  constructor(state: LuaState, T: number, ref: number) {
    this.state = state;
    this.T = T;
    this.ref = ref;
  }

  /**
   * Runs until the coroutine ends (LUA_OK), yields (LUA_YIELD, the yielded code returned through
   * `yielded`) or fails (an error status; `error()` has the message with a traceback).
   */
  resume(): number {
    const n = this.nargs;
    this.nargs = 0;
    return m._lua_resume(this.T, this.state.L, n, outp);
  }

  /** The integer the coroutine yielded (the prelude yields one code). */
  yielded(): number {
    const v = toNumber(this.T, -1);
    m._lua_settop(this.T, 0);
    return v;
  }

  error(): string {
    const msg = toString(this.T, -1) ?? 'error object is not a string';
    m._luaL_traceback(this.state.L, this.T, 0, 0);
    const tb = toString(this.state.L, -1) ?? '';
    m._lua_settop(this.state.L, 0);
    return tb ? `${msg}\n${tb}` : msg;
  }

  /** The coroutine is done with: `finished` when it returned normally (its thread is reused). */
  release(finished: boolean): void {
    this.state.release(this.T, this.ref, finished);
  }
}
