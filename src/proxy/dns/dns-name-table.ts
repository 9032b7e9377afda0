// The name table the control plane sends to a sidecar's DNS proxy: Istio's NameTable (NDS)
// in JSON. Keys are hostnames (Kubernetes service FQDNs, ServiceEntry hosts, `*.suffix`
// wildcards); each entry carries the addresses to answer with (the service VIPs, or the
// auto-allocated VIPs of ServiceEntries without addresses) and, for Kubernetes services,
// the short name and namespace so that `reviews` and `reviews.default` resolve as they do
// through kube-dns search paths:
//
//   { "table": {
//       "reviews.default.svc.cluster.local": { "ips": ["10.96.0.12"], "registry": "Kubernetes",
//                                              "shortname": "reviews", "namespace": "default" },
//       "api.example.com": { "ips": ["240.240.0.1"], "registry": "External" } } }
import net from 'node:net';

export interface NameInfo {
  ips: string[];
  /** `Kubernetes` (service of the cluster domain: short names apply) or `External`. */
  registry?: string;
  shortname?: string;
  namespace?: string;
}

export interface NameTable {
  table: Record<string, NameInfo>;
}

export interface Resolved {
  v4: string[];
  v6: string[];
}

export interface CompiledNameTable {
  /** The addresses for a query name (any case, with or without the trailing dot), or undefined. */
  lookup(name: string): Resolved | undefined;
  readonly size: number;
}

export class NameTableError extends Error {
  override name = 'NameTableError';
}

const LABEL_RE = /^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$/;

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Checks a table's shape; throws NameTableError naming the offending host and field. */
export function validateNameTable(t: unknown): asserts t is NameTable {
  if (typeof t !== 'object' || t === null || typeof (t as NameTable).table !== 'object' || (t as NameTable).table === null) {
    throw new NameTableError('name table: expected an object { table: { "<host>": { ips: [...] } } }');
  }
  for (const [host, info] of Object.entries((t as NameTable).table)) {
    const labels = normalise(host).split('.');
    if (!host || labels.some((l) => !LABEL_RE.test(l)) || labels.slice(1).includes('*')) {
      throw new NameTableError(`name table: "${host}" is not a hostname (a wildcard may only be the first label)`);
    }
    if (typeof info !== 'object' || info === null || !Array.isArray(info.ips)) throw new NameTableError(`name table: ${host}: ips must be a list of IP addresses`);
    for (const ip of info.ips) if (typeof ip !== 'string' || !net.isIP(ip)) throw new NameTableError(`name table: ${host}: "${String(ip)}" in ips is not an IP address`);
    for (const k of ['registry', 'shortname', 'namespace'] as const) {
      if (info[k] !== undefined && typeof info[k] !== 'string') throw new NameTableError(`name table: ${host}: ${k} must be a string`);
    }
    const unknown = Object.keys(info).filter((k) => !['ips', 'registry', 'shortname', 'namespace'].includes(k));
    if (unknown.length) throw new NameTableError(`name table: ${host}: unknown field(s) ${unknown.join(', ')}`);
  }
}

export interface CompileOptions {
  /** The pod's namespace: its services also answer to their bare short name. */
  namespace?: string;
  /** The pod's DNS search domains, stripped from queries the resolver expanded with them. */
  searchDomains?: string[];
}

/**
 * Builds the lookup index. Names answered, as with kube-dns and a Kubernetes search path:
 * the host itself; for Kubernetes services `short.ns`, `short.ns.svc` and, from the same
 * namespace, `short`; any of those with one of the search domains appended (the resolver's
 * expansion); and subdomains of `*.` wildcard hosts (the longest suffix wins).
 */
export function compileNameTable(t: NameTable, opts: CompileOptions = {}): CompiledNameTable {
  validateNameTable(t);
  const exact = new Map<string, Resolved>();
  const wildcards = new Map<string, Resolved>();
  const split = (ips: string[]): Resolved => ({ v4: ips.filter((i) => net.isIPv4(i)), v6: ips.filter((i) => net.isIPv6(i)) });
  const put = (name: string, r: Resolved) => {
    if (!exact.has(name)) exact.set(name, r);
  };
  // Exact hosts first, so an explicit entry wins over a derived short name.
  for (const [host, info] of Object.entries(t.table)) {
    const h = normalise(host);
    if (h.startsWith('*.')) wildcards.set(h.slice(2), split(info.ips));
    else exact.set(h, split(info.ips));
  }
  for (const info of Object.values(t.table)) {
    if (info.registry !== 'Kubernetes' || !info.shortname || !info.namespace) continue;
    const r = split(info.ips);
    const short = normalise(info.shortname);
    const ns = normalise(info.namespace);
    put(`${short}.${ns}`, r);
    put(`${short}.${ns}.svc`, r);
    if (opts.namespace && normalise(opts.namespace) === ns) put(short, r);
  }
  const search = (opts.searchDomains ?? []).map(normalise).filter(Boolean);

  function direct(name: string): Resolved | undefined {
    const hit = exact.get(name);
    if (hit) return hit;
    for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) {
      const w = wildcards.get(name.slice(i + 1));
      if (w) return w;
    }
    return undefined;
  }

  return {
    size: exact.size + wildcards.size,
    lookup(query: string): Resolved | undefined {
      const name = normalise(query);
      const hit = direct(name);
      if (hit) return hit;
      for (const d of search) {
        if (name.endsWith(`.${d}`)) {
          const stripped = direct(name.slice(0, -(d.length + 1)));
          if (stripped) return stripped;
        }
      }
      return undefined;
    },
  };
}
