// The header maps a plugin reads and writes (request/response headers and trailers, an HTTP call's
// answer) as one interface over the proxy's shapes: pseudo headers (:method, :path, :authority,
// :scheme, :status) live in the request or response head, the rest in a HeaderMap.
import type { HeaderMap, RequestHead, ResponseHead } from '../filter.ts';

export interface HeaderAccess {
  pairs(): [string, string][];
  /** How many pairs there are (the count the header callbacks get). */
  count(): number;
  /** The value of `key` (several joined with ","), undefined when absent. */
  get(key: string): string | undefined;
  add(key: string, value: string): void;
  replace(key: string, value: string): void;
  remove(key: string): void;
  setPairs(pairs: readonly (readonly [string, string])[]): void;
}

function list(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function mapPairs(m: HeaderMap, out: [string, string][]): [string, string][] {
  for (const [k, v] of Object.entries(m)) for (const x of list(v)) out.push([k, x]);
  return out;
}

function countOf(m: HeaderMap): number {
  let n = 0;
  for (const k in m) {
    const v = m[k];
    if (v !== undefined) n += Array.isArray(v) ? v.length : 1;
  }
  return n;
}

function addTo(m: HeaderMap, k: string, v: string): void {
  const cur = m[k];
  m[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
}

/** A map without pseudo headers (trailers). */
export class MapAccess implements HeaderAccess {
  readonly m: HeaderMap;
  constructor(m: HeaderMap) {
    this.m = m;
  }
  pairs(): [string, string][] {
    return mapPairs(this.m, []);
  }
  count(): number {
    return countOf(this.m);
  }
  get(key: string): string | undefined {
    const v = list(this.m[key]);
    return v.length ? v.join(',') : undefined;
  }
  add(key: string, value: string): void {
    addTo(this.m, key, value);
  }
  replace(key: string, value: string): void {
    this.m[key] = value;
  }
  remove(key: string): void {
    delete this.m[key];
  }
  setPairs(pairs: readonly (readonly [string, string])[]): void {
    for (const k of Object.keys(this.m)) delete this.m[k];
    for (const [k, v] of pairs) addTo(this.m, k.toLowerCase(), v);
  }
}

export class RequestHeadAccess extends MapAccess {
  private readonly h: RequestHead;
  /** Set when the plugin changed a header: the route is matched again. */
  changed = false;
  constructor(h: RequestHead) {
    super(h.headers);
    this.h = h;
  }
  override pairs(): [string, string][] {
    const h = this.h;
    return mapPairs(h.headers, [
      [':authority', h.authority],
      [':path', h.path],
      [':method', h.method],
      [':scheme', h.scheme],
    ]);
  }
  override count(): number {
    return countOf(this.m) + 4;
  }
  override get(key: string): string | undefined {
    if (key[0] !== ':') return super.get(key);
    const h = this.h;
    return key === ':method' ? h.method : key === ':path' ? h.path : key === ':authority' ? h.authority : key === ':scheme' ? h.scheme : undefined;
  }
  private pseudo(key: string, value: string): boolean {
    if (key[0] !== ':') return false;
    const h = this.h;
    if (key === ':method') h.method = value;
    else if (key === ':path') h.path = value;
    else if (key === ':authority') h.authority = value;
    else if (key === ':scheme') h.scheme = value;
    return true;
  }
  override add(key: string, value: string): void {
    this.changed = true;
    if (!this.pseudo(key, value)) super.add(key, value);
  }
  override replace(key: string, value: string): void {
    this.changed = true;
    if (!this.pseudo(key, value)) super.replace(key, value);
  }
  override remove(key: string): void {
    this.changed = true;
    if (key[0] !== ':') super.remove(key);
  }
  override setPairs(pairs: readonly (readonly [string, string])[]): void {
    this.changed = true;
    super.setPairs(pairs.filter(([k, v]) => !this.pseudo(k, v)));
  }
}

export class ResponseHeadAccess extends MapAccess {
  private readonly h: ResponseHead;
  constructor(h: ResponseHead) {
    super(h.headers);
    this.h = h;
  }
  override pairs(): [string, string][] {
    return mapPairs(this.h.headers, [[':status', String(this.h.status)]]);
  }
  override count(): number {
    return countOf(this.m) + 1;
  }
  override get(key: string): string | undefined {
    return key === ':status' ? String(this.h.status) : super.get(key);
  }
  private status(key: string, value: string): boolean {
    if (key[0] !== ':') return false;
    const n = Number(value);
    if (key === ':status' && Number.isInteger(n) && n >= 100 && n <= 999) this.h.status = n;
    return true;
  }
  override add(key: string, value: string): void {
    if (!this.status(key, value)) super.add(key, value);
  }
  override replace(key: string, value: string): void {
    if (!this.status(key, value)) super.replace(key, value);
  }
  override remove(key: string): void {
    if (key[0] !== ':') super.remove(key);
  }
  override setPairs(pairs: readonly (readonly [string, string])[]): void {
    super.setPairs(pairs.filter(([k, v]) => !this.status(k, v)));
  }
}
