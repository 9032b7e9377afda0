// istiod's network gateway name cache (RESOLVE_HOSTNAME_GATEWAYS, on by default): a MeshNetworks
// gateway given by hostname is resolved in the control plane (A and AAAA), its answer kept for the
// records' TTL (at least 30 s, at most 1 h) and refreshed then; a changed answer asks for a push.
// A lookup never waits for DNS: a name not resolved yet is not used until its answer comes.
import { Resolver } from 'node:dns/promises';

export interface GatewayDnsOptions {
  /** DNS servers (`ip` or `ip:port`); default: the system's. */
  servers?: string[];
  /** Shortest refresh period (istiod's MinGatewayTTL, 30 s). */
  minTtlMs?: number;
  /** Longest refresh period (istiod's MaxGatewayTTL, 1 h). */
  maxTtlMs?: number;
}

/** A name's last answer: its addresses (sorted), or why it has none. */
export interface GatewayName {
  addresses: string[];
  /** Why `addresses` is empty (or why the refresh failed and the previous answer is kept). */
  error?: string;
}

/** What a push reads: the last answer for a name, undefined while the first one is awaited. */
export interface GatewayNameLookup {
  lookup(name: string): GatewayName | undefined;
  /** Stops refreshing the names not in `names` (istiod's cleanupWatches). */
  retain(names: ReadonlySet<string>): void;
}

/** Answers that mean "no such address", not a failure (istiod counts only a server failure as an error). */
const NO_ANSWER = new Set(['ENOTFOUND', 'ENODATA']);

interface Entry {
  answer?: GatewayName;
  timer?: NodeJS.Timeout;
}

export class GatewayNameCache implements GatewayNameLookup {
  readonly #resolver = new Resolver();
  readonly #minTtl: number;
  readonly #maxTtl: number;
  readonly #entries = new Map<string, Entry>();
  readonly #onChange: () => void;
  #closed = false;

  constructor(onChange: () => void, opts: GatewayDnsOptions = {}) {
    if (opts.servers?.length) this.#resolver.setServers(opts.servers);
    this.#minTtl = opts.minTtlMs ?? 30_000;
    this.#maxTtl = opts.maxTtlMs ?? 3_600_000;
    this.#onChange = onChange;
  }

  lookup(name: string): GatewayName | undefined {
    let e = this.#entries.get(name);
    if (!e) {
      e = {};
      this.#entries.set(name, e);
      void this.#refresh(name, e);
    }
    return e.answer;
  }

  retain(names: ReadonlySet<string>): void {
    for (const [name, e] of this.#entries) {
      if (names.has(name)) continue;
      clearTimeout(e.timer);
      this.#entries.delete(name);
    }
  }

  close(): void {
    this.#closed = true;
    this.retain(new Set());
  }

  async #refresh(name: string, e: Entry): Promise<void> {
    const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(name, { ttl: true }), this.#resolver.resolve6(name, { ttl: true })]);
    if (this.#closed || this.#entries.get(name) !== e) return;
    const records = [v4, v6].flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    const failures = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as NodeJS.ErrnoException] : []));
    const serverFailures = failures.filter((f) => !NO_ANSWER.has(f.code ?? ''));
    let answer: GatewayName;
    if (serverFailures.length === 2) {
      // As istiod: the DNS server is unavailable, the previous addresses stay.
      answer = { addresses: e.answer?.addresses ?? [], error: `DNS lookup failed: ${serverFailures[0]!.code ?? serverFailures[0]!.message}` };
    } else {
      answer = { addresses: records.map((r) => r.address).sort() };
      if (!records.length) answer.error = `DNS: no A or AAAA record${failures.length ? ` (${[...new Set(failures.map((f) => f.code))].join(', ')})` : ''}`;
    }
    const ttlMs = records.length && serverFailures.length < 2 ? Math.min(...records.map((r) => r.ttl)) * 1000 : this.#minTtl;
    const changed = JSON.stringify(e.answer?.addresses) !== JSON.stringify(answer.addresses) || e.answer?.error !== answer.error;
    e.answer = answer;
    e.timer = setTimeout(() => void this.#refresh(name, e), Math.min(this.#maxTtl, Math.max(this.#minTtl, ttlMs)));
    e.timer.unref();
    if (changed) this.#onChange();
  }
}
