// Envoy-style stats: named counters, gauges ("cluster.<name>.upstream_rq_total") and histograms
// ("cluster.<name>.upstream_rq_time"). Components look each stat up once, when their config is
// compiled, and bump the returned object on the request path (`c.value++`, `h.record(ms)`): no
// string building or map lookup per request.
//
// stats_config.stats_matcher decides, once when a stat is looked up, whether it exists: a rejected
// name gets a shared null stat (as Envoy's NullCounterImpl/NullGaugeImpl), nothing is stored for
// it and no output lists it. The proxy's own logic therefore never reads a stat's value back; a
// gauge it must read (active requests for drain, active faults) comes from stateGauge().

import type { Socket } from 'node:net';
import type { StatsConfig } from './stats-config.ts';
import { TagProducer } from './tag-extraction.ts';

export interface Stat {
  readonly name: string;
  readonly kind: 'counter' | 'gauge';
  value: number;
}

/**
 * A cluster's upstream_cx_rx_bytes_total and upstream_cx_tx_bytes_total. Envoy adds bytes as
 * they flow; Node already counts each socket's (bytesRead, bytesWritten), so these counters add
 * the open sockets' counts when they are read, and a socket's final counts once when it closes:
 * a long-lived connection (TCP, WebSocket, a gRPC stream) shows its bytes while it lasts.
 */
export class SocketBytes {
  readonly rx: Stat;
  readonly tx: Stat;
  readonly #open = new Set<Socket>();
  #rxClosed = 0;
  #txClosed = 0;

  constructor(rxName: string, txName: string) {
    this.rx = this.#counter(rxName, () => this.#rxClosed, (s) => s.bytesRead);
    this.tx = this.#counter(txName, () => this.#txClosed, (s) => s.bytesWritten);
  }

  #counter(name: string, closed: () => number, moved: (s: Socket) => number): Stat {
    const open = this.#open;
    return {
      name,
      kind: 'counter',
      get value() {
        let v = closed();
        for (const s of open) v += moved(s);
        return v;
      },
    };
  }

  opened(socket: Socket): void {
    this.#open.add(socket);
  }

  closed(socket: Socket): void {
    if (!this.#open.delete(socket)) return;
    this.#rxClosed += socket.bytesRead;
    this.#txClosed += socket.bytesWritten;
  }
}

/**
 * A counter or gauge the stats matcher rejects: one shared object per kind, which the proxy bumps
 * and nothing reads. A plain data property, as real stats have: an accessor (Envoy's null stat
 * reads 0) made every `value++` site polymorphic, 155 ns per bump against 1-3 ns measured.
 */
function nullStat(kind: Stat['kind']): Stat {
  return { name: '', kind, value: 0 };
}

const NULL_COUNTER = nullStat('counter');
const NULL_GAUGE = nullStat('gauge');

/** Socket byte counters that are both rejected: tracks no socket. */
class NullSocketBytes extends SocketBytes {
  override opened(): void {}
  override closed(): void {}
}

const NULL_SOCKET_BYTES = new NullSocketBytes('', '');

/** Envoy's stats_flush_interval default: the length of a histogram's "interval". */
export const DEFAULT_FLUSH_INTERVAL_MS = 5000;

export class Stats {
  private readonly byName = new Map<string, Stat>();
  private readonly histogramsByName = new Map<string, Histogram>();
  private readonly socketBytesByName = new Map<string, SocketBytes>();
  /** stateGauge()s the stats matcher rejects: live for the proxy's logic, listed nowhere. */
  private readonly hiddenStateGauges = new Map<string, Stat>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushIntervalMs = DEFAULT_FLUSH_INTERVAL_MS;
  private config: StatsConfig | undefined;
  private rejected: (name: string) => boolean = () => false;
  private defaultTags: TagProducer | undefined;

  /**
   * The bootstrap's stats_config, before the config that creates stats. Stats created before it
   * (by the runtime itself) that its matcher rejects are dropped: they stop being listed, and
   * their holders keep counting into objects nothing reads.
   */
  configure(config: StatsConfig | undefined): void {
    this.config = config;
    const rejects = config?.rejects;
    this.rejected = rejects ? recentlyRejected(rejects) : () => false;
    if (!rejects) return;
    for (const map of [this.byName, this.histogramsByName] as Map<string, unknown>[]) for (const k of map.keys()) if (rejects(k)) map.delete(k);
    for (const [prefix, b] of this.socketBytesByName) {
      if (rejects(b.rx.name) && rejects(b.tx.name)) this.socketBytesByName.delete(prefix);
    }
  }

  /** How /stats/prometheus names stats: stats_config's tags, or Envoy's default tags. */
  get tags(): TagProducer {
    return this.config?.tags ?? (this.defaultTags ??= TagProducer.defaults());
  }

  counter(name: string): Stat {
    return this.get(name, 'counter');
  }

  gauge(name: string): Stat {
    return this.get(name, 'gauge');
  }

  /**
   * A gauge the proxy's own logic reads (in-flight requests and connections, which drain waits
   * for): a live object even when the stats matcher rejects the name, then listed nowhere.
   */
  stateGauge(name: string): Stat {
    if (!this.rejected(name)) return this.get(name, 'gauge');
    let s = this.hiddenStateGauges.get(name);
    if (!s) this.hiddenStateGauges.set(name, (s = { name, kind: 'gauge', value: 0 }));
    return s;
  }

  histogram(name: string): Histogram {
    let h = this.histogramsByName.get(name);
    if (!h) {
      if (this.rejected(name)) return NULL_HISTOGRAM;
      h = new Histogram(name, this.config?.buckets.find((b) => b.match.match(name))?.bounds);
      this.histogramsByName.set(name, h);
      if (!this.flushTimer) this.startFlushing();
    }
    return h;
  }

  /** `<prefix>upstream_cx_rx_bytes_total` and `_tx_bytes_total`, kept across config updates as counters are. */
  socketBytes(prefix: string): SocketBytes {
    let b = this.socketBytesByName.get(prefix);
    if (!b) {
      const rx = prefix + 'upstream_cx_rx_bytes_total';
      const tx = prefix + 'upstream_cx_tx_bytes_total';
      const keepRx = !this.rejected(rx);
      const keepTx = !this.rejected(tx);
      if (!keepRx && !keepTx) return NULL_SOCKET_BYTES;
      b = new SocketBytes(rx, tx);
      this.socketBytesByName.set(prefix, b);
      if (keepRx) this.byName.set(rx, b.rx);
      if (keepTx) this.byName.set(tx, b.tx);
    }
    return b;
  }

  /** The bootstrap's stats_flush_interval: how often histograms start a new interval. */
  setFlushInterval(ms: number): void {
    this.flushIntervalMs = ms;
    if (this.flushTimer) {
      clearInterval(this.flushTimer);
      this.startFlushing();
    }
  }

  private startFlushing(): void {
    this.flushTimer = setInterval(flushAll, this.flushIntervalMs, this.histogramsByName).unref();
  }

  /** All histograms sorted by name. */
  histograms(): Histogram[] {
    return [...this.histogramsByName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private get(name: string, kind: Stat['kind']): Stat {
    let s = this.byName.get(name);
    if (!s) {
      if (this.rejected(name)) return kind === 'counter' ? NULL_COUNTER : NULL_GAUGE;
      s = { name, kind, value: 0 };
      this.byName.set(name, s);
    }
    return s;
  }

  /** All stats sorted by name (admin /stats): only those the stats matcher accepted exist. */
  all(): Stat[] {
    return [...this.byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Every gauge, with the stateGauge()s the matcher keeps out of the outputs (what drain sums). */
  *liveGauges(): Iterable<Stat> {
    for (const s of this.byName.values()) if (s.kind === 'gauge') yield s;
    yield* this.hiddenStateGauges.values();
  }

  /** Removes stats under a prefix (a cluster or listener that went away). */
  removePrefix(prefix: string): void {
    (this.config?.tags ?? this.defaultTags)?.forgetPrefix(prefix);
    for (const map of [this.byName, this.histogramsByName, this.socketBytesByName, this.hiddenStateGauges] as Map<string, unknown>[]) {
      for (const k of map.keys()) if (k.startsWith(prefix)) map.delete(k);
    }
  }
}

function flushAll(hs: Map<string, Histogram>): void {
  for (const h of hs.values()) h.flush();
}

/** Envoy's default histogram bucket bounds (stats_config histogram_bucket_settings unset), ms. */
export const DEFAULT_BUCKETS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/** The quantiles /stats prints for each histogram, in percent (Envoy's supported_quantiles). */
export const SUPPORTED_QUANTILES: readonly number[] = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100];

// Integer values below this find their bucket by one table read; larger ones by binary search.
const INDEX_TABLE_SIZE = 1024;

function bucketIndex(bounds: readonly number[], v: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bounds[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The bucket of each integer 0..INDEX_TABLE_SIZE-1 (first bound >= value; bounds.length past the last). */
function indexTable(bounds: readonly number[]): Uint8Array {
  const t = new Uint8Array(INDEX_TABLE_SIZE);
  for (let v = 0; v < INDEX_TABLE_SIZE; v++) t[v] = bucketIndex(bounds, v);
  return t;
}

const DEFAULT_TABLE = indexTable(DEFAULT_BUCKETS);

/**
 * Envoy's histogram: values (integers, as Envoy records them: a duration is whole milliseconds)
 * counted in fixed buckets, with their count and sum. `record` allocates nothing: the bucket comes
 * from a precomputed table (binary search past it). "Cumulative" is everything recorded; "interval"
 * is what the last completed flush interval recorded (flush(), every stats_flush_interval), as in
 * Envoy.
 */
export class Histogram {
  readonly name: string;
  readonly kind = 'histogram';
  readonly bounds: readonly number[];
  private readonly table: Uint8Array;
  /** Per bucket: counts[i] values <= bounds[i] (and > bounds[i-1]); counts[bounds.length] the rest. */
  readonly counts: Float64Array;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  // The counts at the last flush, and the last interval's (allocated at the first flush with values).
  private flushedCounts: Float64Array | undefined;
  private flushedCount = 0;
  private intervalCounts: Float64Array | undefined;
  private intervalCount = 0;

  constructor(name: string, bounds: readonly number[] = DEFAULT_BUCKETS) {
    this.name = name;
    this.bounds = bounds;
    this.table = bounds === DEFAULT_BUCKETS ? DEFAULT_TABLE : indexTable(bounds);
    this.counts = new Float64Array(bounds.length + 1);
  }

  record(value: number): void {
    const v = value > 0 ? Math.floor(value) : 0;
    this.counts[v < INDEX_TABLE_SIZE ? this.table[v] : bucketIndex(this.bounds, v)]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** Records the milliseconds since `start` (a performance.now() reading). */
  recordSince(start: number): void {
    this.record(performance.now() - start);
  }

  /** Ends a flush interval: what was recorded since the previous one becomes the interval. */
  flush(): void {
    this.intervalCount = this.count - this.flushedCount;
    if (this.intervalCount === 0) return;
    const n = this.counts.length;
    const flushed = (this.flushedCounts ??= new Float64Array(n));
    const interval = (this.intervalCounts ??= new Float64Array(n));
    for (let i = 0; i < n; i++) {
      interval[i] = this.counts[i] - flushed[i];
      flushed[i] = this.counts[i];
    }
    this.flushedCount = this.count;
  }

  /** Quantiles (0..100) of everything recorded; NaN without values. */
  cumulativeQuantiles(qs: readonly number[] = SUPPORTED_QUANTILES): number[] {
    return qs.map((q) => quantile(this.bounds, this.counts, this.count, q / 100, this.min, this.max));
  }

  /** Quantiles (0..100) of the last flush interval; NaN when it recorded nothing. */
  intervalQuantiles(qs: readonly number[] = SUPPORTED_QUANTILES): number[] {
    const counts = this.intervalCounts;
    return qs.map((q) => (counts ? quantile(this.bounds, counts, this.intervalCount, q / 100, 0, Infinity) : NaN));
  }
}

/** The histogram of every name the stats matcher rejects: records nothing. */
class NullHistogram extends Histogram {
  override record(): void {}
}

const NULL_HISTOGRAM: Histogram = new NullHistogram('');

/**
 * The q-quantile, interpolated linearly inside its bucket, the bucket's range narrowed to the
 * smallest and largest value recorded. (Envoy computes quantiles on a log-linear histogram kept
 * beside the buckets; these are exact to the bucket, and exact for the extremes.)
 */
function quantile(bounds: readonly number[], counts: Float64Array, total: number, q: number, min: number, max: number): number {
  if (total === 0) return NaN;
  const rank = q * total;
  let before = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c === 0 || (before + c < rank && i < counts.length - 1)) {
      before += c;
      continue;
    }
    const lower = Math.max(i === 0 ? 0 : bounds[i - 1], min);
    // Past the largest bound: up to the largest value, or (not known) the bound itself.
    const upper = Math.min(i < bounds.length ? bounds[i] : max === Infinity ? bounds[i - 1] : max, max);
    if (upper <= lower) return upper;
    // Rounded to 1e-4 ms: no float noise (999.0000000000001) in /stats.
    return Math.round((lower + ((upper - lower) * Math.max(rank - before, 0)) / c) * 1e4) / 1e4;
  }
  return NaN;
}

/**
 * Per-status-code counters (`<prefix>upstream_rq_200`, created on first use) and per class
 * (`<prefix>upstream_rq_2xx`, made up front, or on first use when `lazyClasses`).
 */
export class StatusCounters {
  private readonly stats: Stats;
  private readonly prefix: string;
  private readonly codes: (Stat | undefined)[] = [];
  private readonly classes: (Stat | undefined)[];

  constructor(stats: Stats, prefix: string, lazyClasses = false) {
    this.stats = stats;
    this.prefix = prefix;
    this.classes = lazyClasses ? [] : [1, 2, 3, 4, 5].map((c) => stats.counter(`${prefix}${c}xx`));
  }

  record(status: number): void {
    let c = this.codes[status];
    if (c === undefined) c = this.codes[status] = this.stats.counter(this.prefix + status);
    c.value++;
    const k = (status / 100) | 0;
    if (k >= 1 && k <= 5) (this.classes[k - 1] ??= this.stats.counter(`${this.prefix}${k}xx`)).value++;
  }
}

/**
 * Envoy's CodeStatsImpl::chargeBasicResponseStat under a prefix, as its router charges a response
 * it retries (`cluster.<name>.retry.`): <prefix>upstream_rq_completed, _<class>xx and _<code>,
 * each made when first charged (a cluster that never retried a response shows none).
 */
export class BasicResponseStats {
  private readonly stats: Stats;
  private readonly prefix: string;
  private completed: Stat | undefined;
  private readonly codes: StatusCounters;

  constructor(stats: Stats, prefix: string) {
    this.stats = stats;
    this.prefix = prefix;
    this.codes = new StatusCounters(stats, prefix + 'upstream_rq_', true);
  }

  record(status: number): void {
    (this.completed ??= this.stats.counter(this.prefix + 'upstream_rq_completed')).value++;
    this.codes.record(status);
  }
}

/**
 * The matcher, remembering the last names it rejected: a stat looked up by a name built per
 * request (ext_authz's and the fault filter's per-cluster counters) is matched once, not on every
 * request (~0.6 µs with Istio's list). Bounded, as rejecting stats is about not keeping them.
 */
function recentlyRejected(rejects: (name: string) => boolean): (name: string) => boolean {
  const recent = new Set<string>();
  return (name) => {
    if (recent.has(name)) return true;
    if (!rejects(name)) return false;
    if (recent.size >= 1024) recent.clear();
    recent.add(name);
    return true;
  };
}
