// The rate limit rules of envoyproxy/ratelimit's YAML configuration, and the counting: a domain's
// descriptors form a tree (key, optional value, rate_limit {unit, requests_per_unit}, nested
// descriptors, rate_limit.unlimited, shadow_mode, rate_limit.name). A request descriptor's entries walk the tree one level
// each, matching `key` + `value` first, else `key` alone (any value); the node reached by the last
// entry gives the limit. Each distinct request descriptor (its actual values) has its own counter in
// a fixed window of the limit's unit, as envoyproxy/ratelimit counts in Redis; here the counters
// live in this process's memory.
import { parseAllDocuments } from 'yaml';

const UNIT_SECONDS: Readonly<Record<string, number>> = { second: 1, minute: 60, hour: 3600, day: 86_400, month: 2_592_000, year: 31_536_000 };

export interface Limit {
  readonly requestsPerUnit: number;
  /** The unit as RateLimitResponse.RateLimit.Unit names it (SECOND, MINUTE...). */
  readonly unit: string;
  readonly windowSeconds: number;
  readonly name?: string;
  readonly unlimited: boolean;
  readonly shadowMode: boolean;
}

interface Node {
  readonly limit?: Limit;
  /** Children by `key` + "\0" + value, and by `key` alone for entries without a value. */
  readonly children: Map<string, Node>;
}

export interface Entry {
  readonly key: string;
  readonly value: string;
}

export interface Verdict {
  readonly code: 'OK' | 'OVER_LIMIT';
  readonly limit?: Limit;
  readonly remaining: number;
  readonly resetSeconds: number;
}

type Raw = Record<string, unknown>;

function readLimit(raw: unknown, where: string): Limit | undefined {
  if (raw === undefined || raw === null) return undefined;
  const r = raw as Raw;
  const unit = String(r.unit ?? '').toLowerCase();
  const windowSeconds = UNIT_SECONDS[unit];
  const unlimited = r.unlimited === true;
  if (!unlimited && !windowSeconds) throw new Error(`${where}.unit: "${String(r.unit)}" is not one of ${Object.keys(UNIT_SECONDS).join(', ')}`);
  const requestsPerUnit = Number(r.requests_per_unit ?? 0);
  if (!unlimited && !(Number.isInteger(requestsPerUnit) && requestsPerUnit >= 0)) throw new Error(`${where}.requests_per_unit: must be a whole number >= 0`);
  return { requestsPerUnit, unit: unit.toUpperCase(), windowSeconds: windowSeconds ?? 0, name: typeof r.name === 'string' ? r.name : undefined, unlimited, shadowMode: false };
}

function readDescriptors(list: unknown, where: string): Map<string, Node> {
  const children = new Map<string, Node>();
  if (list === undefined || list === null) return children;
  if (!Array.isArray(list)) throw new Error(`${where}: must be a list`);
  list.forEach((d: Raw, i) => {
    const at = `${where}[${i}]`;
    if (typeof d?.key !== 'string' || !d.key) throw new Error(`${at}.key: required`);
    const id = d.value === undefined || d.value === null || d.value === '' ? d.key : `${d.key}\0${String(d.value)}`;
    if (children.has(id)) throw new Error(`${at}: duplicate descriptor key "${d.key}"${id === d.key ? '' : ` value "${String(d.value)}"`}`);
    let limit = readLimit(d.rate_limit, `${at}.rate_limit`);
    if (limit && d.shadow_mode === true) limit = { ...limit, shadowMode: true };
    children.set(id, { limit, children: readDescriptors(d.descriptors, `${at}.descriptors`) });
  });
  return children;
}

/**
 * Every domain's descriptor tree, from YAML text holding one or more documents (one domain each),
 * or the Kubernetes ConfigMap that holds such files in its data (the task's `ratelimit-config`).
 */
export function readConfig(text: string, source: string, domains = new Map<string, Map<string, Node>>()): Map<string, Map<string, Node>> {
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${source}: ${doc.errors[0].message}`);
    const raw = doc.toJS() as Raw | null;
    if (!raw) continue;
    if (raw.kind === 'ConfigMap') {
      for (const [file, content] of Object.entries((raw.data ?? {}) as Record<string, unknown>)) {
        if (/\.ya?ml$/.test(file) && typeof content === 'string') readConfig(content, `${source}: data.${file}`, domains);
      }
      continue;
    }
    if (typeof raw.domain !== 'string' || !raw.domain) throw new Error(`${source}: domain: required`);
    if (domains.has(raw.domain)) throw new Error(`${source}: domain "${raw.domain}" is configured twice`);
    domains.set(raw.domain, readDescriptors(raw.descriptors, `${source}: ${raw.domain}.descriptors`));
  }
  return domains;
}

/** The limit a request descriptor falls under, undefined when none. */
function limitOf(tree: Map<string, Node>, entries: readonly Entry[]): Limit | undefined {
  let level = tree;
  let node: Node | undefined;
  for (const e of entries) {
    node = level.get(`${e.key}\0${e.value}`) ?? level.get(e.key);
    if (!node) return undefined;
    level = node.children;
  }
  return node?.limit;
}

/** Counts hits per descriptor in fixed windows, in memory (one process: not shared between replicas). */
export class Counters {
  private readonly domains: Map<string, Map<string, Node>>;
  private readonly counts = new Map<string, { window: number; hits: number }>();

  constructor(domains: Map<string, Map<string, Node>>) {
    this.domains = domains;
  }

  hit(domain: string, entries: readonly Entry[], hits: number, nowMs = Date.now()): Verdict {
    const tree = this.domains.get(domain);
    const limit = tree && limitOf(tree, entries);
    if (!limit || limit.unlimited) return { code: 'OK', remaining: 0, resetSeconds: 0 };
    const now = nowMs / 1000;
    const window = Math.floor(now / limit.windowSeconds);
    const key = `${domain}|${entries.map((e) => `${e.key}=${e.value}`).join('|')}|${limit.windowSeconds}`;
    let c = this.counts.get(key);
    if (!c || c.window !== window) this.counts.set(key, (c = { window, hits: 0 }));
    c.hits += hits;
    const over = c.hits > limit.requestsPerUnit;
    const resetSeconds = Math.ceil((window + 1) * limit.windowSeconds - now);
    return { code: over && !limit.shadowMode ? 'OVER_LIMIT' : 'OK', limit, remaining: Math.max(0, limit.requestsPerUnit - c.hits), resetSeconds };
  }

  /** Drops counters of past windows (called now and then, so memory follows the live descriptors). */
  sweep(nowMs = Date.now()): void {
    const now = nowMs / 1000;
    for (const [k, c] of this.counts) {
      const seconds = Number(k.slice(k.lastIndexOf('|') + 1));
      if (Math.floor(now / seconds) !== c.window) this.counts.delete(k);
    }
  }
}
