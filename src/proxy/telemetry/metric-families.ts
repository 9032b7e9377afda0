// Hand-written counters and histograms for Istio's request metrics, with their text exposition.
// Measured with bench/micro/istio-stats.ts (node 24, shared AMD EPYC, noisy): prom-client children
// re-hash their ~25 labels on every inc()/observe(), so one request into the four HTTP metrics
// cost 10-150 µs (p75 10-230 µs) even with the children cached; with these cells, plain numbers
// behind the same label cache, it costs 0.13-0.45 µs. A scrape renders faster too (0.9 vs 1.5 ms).
// prom-client still serves the process metrics; the exposition format is Prometheus text 0.0.4.
import { detachedString } from '../../core/detached-string.ts';

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `k="v",...` for a label set (rendered once per series). */
export function renderLabels(labels: Record<string, string>): string {
  let s = '';
  for (const k in labels) s += `${s ? ',' : ''}${k}="${escape(labels[k])}"`;
  return s;
}

export class CounterCell {
  readonly labels: string;
  value = 0;

  constructor(labels: string) {
    this.labels = labels;
  }

  inc(n = 1): void {
    this.value += n;
  }
}

export class HistogramCell {
  readonly labels: string;
  readonly bounds: readonly number[];
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(labels: string, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

abstract class Family<C> {
  readonly name: string;
  readonly help: string;
  protected readonly cells = new Map<string, C>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  /** The cell of a label set (looked up once per distinct set by the caller's cache). */
  child(labels: Record<string, string>): C {
    let text = renderLabels(labels);
    let c = this.cells.get(text);
    if (!c) {
      // Kept for the process's life: a flat copy, not a chain of views of the label values (which
      // may be cut from a request's head).
      text = detachedString(text);
      this.cells.set(text, (c = this.make(text)));
    }
    return c;
  }

  protected abstract make(labels: string): C;
  abstract render(): string;
}

export class CounterFamily extends Family<CounterCell> {
  protected make(labels: string): CounterCell {
    return new CounterCell(labels);
  }

  render(): string {
    let s = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const c of this.cells.values()) s += `${this.name}{${c.labels}} ${c.value}\n`;
    return s;
  }
}

export class HistogramFamily extends Family<HistogramCell> {
  readonly bounds: readonly number[];

  constructor(name: string, help: string, bounds: readonly number[]) {
    super(name, help);
    this.bounds = bounds;
  }

  protected make(labels: string): HistogramCell {
    return new HistogramCell(labels, this.bounds);
  }

  render(): string {
    const n = this.name;
    let s = `# HELP ${n} ${this.help}\n# TYPE ${n} histogram\n`;
    for (const c of this.cells.values()) {
      const sep = c.labels ? ',' : '';
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += c.counts[i];
        s += `${n}_bucket{${c.labels}${sep}le="${this.bounds[i]}"} ${acc}\n`;
      }
      s += `${n}_bucket{${c.labels}${sep}le="+Inf"} ${c.count}\n${n}_sum{${c.labels}} ${c.sum}\n${n}_count{${c.labels}} ${c.count}\n`;
    }
    return s;
  }
}
