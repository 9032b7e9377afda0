// The host functions under the prelude's stream handle: each acts on the stream whose coroutine runs
// now (`running`, set around every resume; one at a time on Node's thread), so they are made once
// per process and no closure is made per stream.
import fs from 'node:fs';
import { KIND_REQUEST_HEADERS, KIND_REQUEST_TRAILERS, KIND_RESPONSE_HEADERS, KIND_RESPONSE_TRAILERS } from './lua-prelude.ts';
import { hostFunction, pushBoolean, pushBytes, pushNil, pushNumber, pushString, pushValue, raise, readValue, toBoolean, toBytes, toNumber, toString, typeOf, T_BOOLEAN, T_NUMBER, T_STRING, T_TABLE, type HostFunction } from './lua-vm.ts';
import type { HeaderMap } from '../filter.ts';
import type { LuaStreamFilter } from './lua-stream.ts';

let running: LuaStreamFilter | undefined;

/** Makes `s` the stream the host functions act on; returns the one to restore with leaveStream. */
export function enterStream(s: LuaStreamFilter): LuaStreamFilter | undefined {
  const prev = running;
  running = s;
  return prev;
}

export function leaveStream(prev: LuaStreamFilter | undefined): void {
  running = prev;
}

function stream(): LuaStreamFilter {
  if (!running) throw new Error('the stream handle works only while envoy_on_request or envoy_on_response runs');
  return running;
}

// === headers ===

/** The values of header `key` in map `kind`: pseudo headers come from the request or response head. */
function values(s: LuaStreamFilter, kind: number, key: string): string[] {
  if (kind === KIND_REQUEST_HEADERS) {
    const h = s.reqHead!;
    if (key[0] === ':') {
      const v = key === ':method' ? h.method : key === ':path' ? h.path : key === ':authority' ? h.authority : key === ':scheme' ? h.scheme : undefined;
      return v === undefined ? [] : [v];
    }
    return list(h.headers[key]);
  }
  if (kind === KIND_RESPONSE_HEADERS) {
    if (key === ':status') return [String(s.resHead!.status)];
    return list(s.resHead!.headers[key]);
  }
  return list(map(s, kind)?.[key]);
}

function list(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function map(s: LuaStreamFilter, kind: number): HeaderMap | undefined {
  if (kind === KIND_REQUEST_HEADERS) return s.reqHead!.headers;
  if (kind === KIND_RESPONSE_HEADERS) return s.resHead!.headers;
  if (kind === KIND_RESPONSE_TRAILERS) return s.resTrailers;
  return undefined;
}

/** Sets pseudo header `key` (or a regular one when it is not one); false when the key is not a pseudo header. */
function setPseudo(s: LuaStreamFilter, kind: number, key: string, value: string): boolean {
  if (key[0] !== ':') return false;
  if (kind === KIND_REQUEST_HEADERS) {
    const h = s.reqHead!;
    if (key === ':method') h.method = value;
    else if (key === ':path') h.path = value;
    else if (key === ':authority') h.authority = value;
    else if (key === ':scheme') h.scheme = value;
  } else if (kind === KIND_RESPONSE_HEADERS && key === ':status') {
    const n = Number(value);
    if (Number.isInteger(n) && n >= 100 && n <= 999) s.resHead!.status = n;
  }
  return true;
}

function keyArg(L: number, i: number, what: string): string {
  const k = typeOf(L, i) === T_STRING ? toString(L, i) : undefined;
  if (k === undefined) raise(L, `${what}: the header name must be a string`);
  return k!.toLowerCase();
}

function valueArg(L: number, i: number, what: string): string {
  const t = typeOf(L, i);
  if (t !== T_STRING && t !== T_NUMBER) raise(L, `${what}: the header value must be a string`);
  return toString(L, i)!;
}

function writable(L: number, s: LuaStreamFilter, kind: number, what: string): HeaderMap {
  const m = map(s, kind);
  if (!m) raise(L, `${what}: ${kind === KIND_REQUEST_TRAILERS ? 'request trailers are not supported in rig proxy' : 'no such header map here'}`);
  if (kind === KIND_REQUEST_HEADERS) s.requestHeadersChanged = true;
  return m!;
}

const hget: HostFunction = (L) => {
  const s = stream();
  const kind = toNumber(L, 1);
  if (kind === KIND_REQUEST_TRAILERS) return raise(L, 'trailers(): request trailers are not supported in rig proxy');
  const v = values(s, kind, keyArg(L, 2, 'get()'));
  if (v.length === 0) pushNil(L);
  else pushString(L, v.length === 1 ? v[0]! : v.join(','));
  return 1;
};

const hgetidx: HostFunction = (L) => {
  const v = values(stream(), toNumber(L, 1), keyArg(L, 2, 'getAtIndex()'));
  const i = toNumber(L, 3);
  if (Number.isInteger(i) && i >= 0 && i < v.length) pushString(L, v[i]!);
  else pushNil(L);
  return 1;
};

const hnum: HostFunction = (L) => {
  pushNumber(L, values(stream(), toNumber(L, 1), keyArg(L, 2, 'getNumValues()')).length);
  return 1;
};

const hadd: HostFunction = (L) => {
  const s = stream();
  const kind = toNumber(L, 1);
  const k = keyArg(L, 2, 'add()');
  const v = valueArg(L, 3, 'add()');
  const m = writable(L, s, kind, 'add()');
  if (setPseudo(s, kind, k, v)) return 0;
  const old = m[k];
  m[k] = old === undefined ? v : Array.isArray(old) ? [...old, v] : [old, v];
  return 0;
};

const hreplace: HostFunction = (L) => {
  const s = stream();
  const kind = toNumber(L, 1);
  const k = keyArg(L, 2, 'replace()');
  const v = valueArg(L, 3, 'replace()');
  const m = writable(L, s, kind, 'replace()');
  if (!setPseudo(s, kind, k, v)) m[k] = v;
  return 0;
};

const hremove: HostFunction = (L) => {
  const s = stream();
  const kind = toNumber(L, 1);
  const k = keyArg(L, 2, 'remove()');
  const m = writable(L, s, kind, 'remove()');
  if (k[0] !== ':') delete m[k];
  return 0;
};

/** All headers as {k1, v1, k2, v2, ...} (pseudo headers first), for pairs(). */
const hlist: HostFunction = (L) => {
  const s = stream();
  const kind = toNumber(L, 1);
  const kv: string[] = [];
  if (kind === KIND_REQUEST_HEADERS) {
    const h = s.reqHead!;
    kv.push(':authority', h.authority, ':path', h.path, ':method', h.method, ':scheme', h.scheme);
  } else if (kind === KIND_RESPONSE_HEADERS) kv.push(':status', String(s.resHead!.status));
  else if (kind === KIND_REQUEST_TRAILERS) return raise(L, 'trailers(): request trailers are not supported in rig proxy');
  for (const [k, v] of Object.entries(map(s, kind) ?? {})) for (const x of list(v)) kv.push(k, x);
  pushValue(L, kv);
  return 1;
};

// === body and trailers ===

const body: HostFunction = (L) => {
  pushNumber(L, stream().bodyState(toNumber(L, 1)));
  return 1;
};

const trailers: HostFunction = (L) => {
  const dir = toNumber(L, 1);
  if (dir === 0) return raise(L, 'trailers(): request trailers are not supported in rig proxy');
  const s = stream();
  const st = s.bodyState(dir);
  pushNumber(L, st === 2 ? 2 : s.resTrailers ? 1 : 0);
  return 1;
};

const blen: HostFunction = (L) => {
  pushNumber(L, stream().bodyOf(toNumber(L, 1)).length);
  return 1;
};

/** getBytes(index, length): `length` bytes from 0-based `index`, as Envoy's (an error past the end). */
const bget: HostFunction = (L) => {
  const b = stream().bodyOf(toNumber(L, 1));
  const index = toNumber(L, 2);
  const length = toNumber(L, 3);
  if (!Number.isInteger(index) || !Number.isInteger(length) || index < 0 || length < 0 || index + length > b.length) return raise(L, 'getBytes(): index and length out of range');
  pushBytes(L, b.subarray(index, index + length));
  return 1;
};

const bset: HostFunction = (L) => {
  const b = typeOf(L, 2) === T_STRING || typeOf(L, 2) === T_NUMBER ? toBytes(L, 2) : undefined;
  if (!b) return raise(L, 'setBytes(): the body must be a string');
  stream().setBody(toNumber(L, 1), b);
  pushNumber(L, b.length);
  return 1;
};

// === local replies and HTTP calls ===

/** A table of headers (string or list-of-strings values) as a HeaderMap with lower-case names. */
function headerTable(L: number, i: number, what: string): HeaderMap {
  if (typeOf(L, i) !== T_TABLE) raise(L, `${what}: headers must be a table`);
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(readValue(L, i) as Record<string, unknown>)) {
    const vs = Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)];
    if (vs.length) out[k.toLowerCase()] = vs.length === 1 ? vs[0] : vs;
  }
  return out;
}

const respond: HostFunction = (L) => {
  const s = stream();
  if (toNumber(L, 1) !== 0) return raise(L, 'respond() in envoy_on_response is not supported in rig proxy');
  const headers = headerTable(L, 2, 'respond()');
  const status = Number(headers[':status']);
  if (!Number.isInteger(status) || status < 200 || status > 999) return raise(L, 'respond(): :status must be a number from 200 to 999');
  delete headers[':status'];
  const b = typeOf(L, 3) === T_STRING ? toBytes(L, 3) : undefined;
  s.reply = { status, headers, body: b?.toString(), details: 'lua_response' };
  return 0;
};

/** httpCall(cluster, headers, body, timeout_ms | {timeout_ms=, asynchronous=}, asynchronous): true when it does not wait. */
const call: HostFunction = (L) => {
  const s = stream();
  const dir = toNumber(L, 1);
  const cluster = typeOf(L, 2) === T_STRING ? toString(L, 2)! : '';
  if (!s.config.clusters.get(cluster)) return raise(L, 'http call cluster invalid. Must be configured');
  const headers = headerTable(L, 3, 'httpCall()');
  const method = headers[':method'];
  const path = headers[':path'];
  const authority = headers[':authority'];
  if (typeof method !== 'string' || typeof path !== 'string' || typeof authority !== 'string') return raise(L, "http call headers must include ':path', ':method', and ':authority'");
  const reqBody = typeOf(L, 4) === T_STRING ? toBytes(L, 4) : undefined;
  let timeoutMs = 0;
  let asynchronous = typeOf(L, 6) === T_BOOLEAN && toBoolean(L, 6);
  if (typeOf(L, 5) === T_TABLE) {
    const o = readValue(L, 5) as Record<string, unknown>;
    timeoutMs = Number(o.timeout_ms ?? 0);
    asynchronous = o.asynchronous === true;
    const unknown = Object.keys(o).filter((k) => k !== 'timeout_ms' && k !== 'asynchronous');
    if (unknown.length) return raise(L, `httpCall(): options ${unknown.join(', ')} are not supported in rig proxy`);
  } else if (typeOf(L, 5) === T_NUMBER) timeoutMs = toNumber(L, 5);
  if (!(timeoutMs >= 0)) return raise(L, 'http call timeout must be >= 0');
  if (!asynchronous && dir !== 0) return raise(L, 'httpCall() in envoy_on_response is not supported in rig proxy unless asynchronous (the response path does not wait)');
  const h: Record<string, string | string[]> = { host: authority };
  for (const [k, v] of Object.entries(headers)) if (k[0] !== ':' && v !== undefined) h[k] = v;
  if (reqBody) h['content-length'] = String(reqBody.length);
  s.startCall({ cluster, method, path, headers: h, body: reqBody, timeoutMs: timeoutMs || 24 * 3600_000 }, asynchronous);
  pushBoolean(L, asynchronous);
  return 1;
};

const callresult: HostFunction = (L) => {
  const r = stream().callResult!;
  pushValue(L, r.headers);
  if (r.body.length) pushBytes(L, r.body);
  else pushNil(L);
  return 2;
};

// === logs, stream info, metadata, connection, utilities ===

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

const log: HostFunction = (L) => {
  const s = stream();
  const level = LEVELS[toNumber(L, 1)] ?? 'info';
  const msg = toString(L, 2) ?? String(readValue(L, 2));
  s.config.log?.[level](`script log: ${msg}`);
  return 0;
};

const si: HostFunction = (L) => {
  const s = stream();
  const info = s.cb.streamInfo;
  const c = s.cb.connection;
  const what = toNumber(L, 1);
  const v =
    what === 1
      ? info.protocol
      : what === 2
        ? (info.downstreamLocalAddress ?? `${c.localAddress}:${c.localPort}`)
        : what === 3
          ? (info.downstreamDirectRemoteAddress ?? `${c.directRemoteAddress ?? c.remoteAddress}:${c.directRemotePort ?? c.remotePort}`)
          : what === 4
            ? (info.downstreamRemoteAddress ?? `${c.remoteAddress}:${c.remotePort}`)
            : (info.requestedServerName ?? c.sni ?? '');
  pushString(L, v);
  return 1;
};

const dmget: HostFunction = (L) => {
  const ns = toString(L, 1) ?? '';
  pushValue(L, stream().cb.streamInfo.filterState?.[ns]);
  return 1;
};

const dmset: HostFunction = (L) => {
  const ns = toString(L, 1);
  const key = toString(L, 2);
  if (ns === undefined || key === undefined) return raise(L, 'dynamicMetadata():set(filter_name, key, value): filter_name and key must be strings');
  const state = (stream().cb.streamInfo.filterState ??= {});
  const md = (state[ns] ??= {}) as Record<string, unknown>;
  md[key] = readValue(L, 3);
  return 0;
};

const dmlist: HostFunction = (L) => {
  pushValue(L, stream().cb.streamInfo.filterState ?? {});
  return 1;
};

/** The matched route's metadata under the filter's name (else envoy.filters.http.lua), as Envoy's metadata(). */
const meta: HostFunction = (L) => {
  const s = stream();
  const fm = (s.cb.matchedRoute()?.raw.metadata as { filter_metadata?: Record<string, unknown> } | undefined)?.filter_metadata;
  pushValue(L, fm?.[s.config.name] ?? fm?.['envoy.filters.http.lua']);
  return 1;
};

const ssl: HostFunction = (L) => {
  const c = stream().cb.connection;
  const what = toNumber(L, 1);
  if (what === 1) pushBoolean(L, c.tls);
  else if (what === 2) pushBoolean(L, c.peerCertificate?.() !== undefined);
  else pushValue(L, (c.peerSans ?? []).filter((s) => s.includes('://')));
  return 1;
};

const clearroute: HostFunction = () => {
  stream().cb.clearRouteCache();
  return 0;
};

const base64: HostFunction = (L) => {
  pushString(L, (toBytes(L, 1) ?? Buffer.alloc(0)).toString('base64'));
  return 1;
};

const now: HostFunction = (L) => {
  const ms = Date.now();
  if (toNumber(L, 1) || readValue(L, 1) === true) pushString(L, String(ms));
  else pushNumber(L, ms);
  return 1;
};

/** require()'s searcher: a file of the real file system, or nil. */
const readfile: HostFunction = (L) => {
  try {
    pushBytes(L, fs.readFileSync(toString(L, 1) ?? ''));
  } catch {
    pushNil(L);
  }
  return 1;
};

export const HOST_FUNCTIONS: ReadonlyMap<string, number> = new Map(
  Object.entries({ hget, hgetidx, hnum, hadd, hreplace, hremove, hlist, body, trailers, blen, bget, bset, respond, call, callresult, log, si, dmget, dmset, dmlist, meta, ssl, clearroute, base64, now, readfile }).map(([k, fn]) => [k, hostFunction(fn)]),
);

