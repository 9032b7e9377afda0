// Envoy-style stats: named counters and gauges ("cluster.<name>.upstream_rq_total"). Components
// look each stat up once, when their config is compiled, and bump the returned object on the
// request path (`c.value++`): no string building or map lookup per request.

export interface Stat {
  readonly name: string;
  readonly kind: 'counter' | 'gauge';
  value: number;
}

export class Stats {
  private readonly byName = new Map<string, Stat>();

  counter(name: string): Stat {
    return this.get(name, 'counter');
  }

  gauge(name: string): Stat {
    return this.get(name, 'gauge');
  }

  private get(name: string, kind: Stat['kind']): Stat {
    let s = this.byName.get(name);
    if (!s) {
      s = { name, kind, value: 0 };
      this.byName.set(name, s);
    }
    return s;
  }

  /** All stats sorted by name (admin /stats). */
  all(): Stat[] {
    return [...this.byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Removes stats under a prefix (a cluster or listener that went away). */
  removePrefix(prefix: string): void {
    for (const k of this.byName.keys()) if (k.startsWith(prefix)) this.byName.delete(k);
  }
}

/** Per-status-code counters (`<prefix>upstream_rq_200`, `<prefix>upstream_rq_2xx`), created on first use. */
export class StatusCounters {
  private readonly stats: Stats;
  private readonly prefix: string;
  private readonly codes: (Stat | undefined)[] = [];
  private readonly classes: Stat[];

  constructor(stats: Stats, prefix: string) {
    this.stats = stats;
    this.prefix = prefix;
    this.classes = [1, 2, 3, 4, 5].map((c) => stats.counter(`${prefix}${c}xx`));
  }

  record(status: number): void {
    let c = this.codes[status];
    if (c === undefined) c = this.codes[status] = this.stats.counter(this.prefix + status);
    c.value++;
    const k = (status / 100) | 0;
    if (k >= 1 && k <= 5) this.classes[k - 1].value++;
  }
}
