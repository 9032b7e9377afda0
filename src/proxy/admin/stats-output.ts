// /stats as Envoy renders it: counters and gauges ("name: value", sorted), then histograms as
// quantile summaries, "name: P0(interval,cumulative) P25(...) ... P100(...)", or "name: No
// recorded values". ?format=json: {"stats": [{name, value}..., {"histograms": {supported_quantiles,
// computed_quantiles: [{name, values: [{interval, cumulative}...]}]}}]}, NaN as null.
import { SUPPORTED_QUANTILES, type Histogram, type Stat } from '../stats/stats.ts';

/** A quantile as Envoy prints it (fmt's shortest double; "nan" for none). */
function num(v: number): string {
  return Number.isNaN(v) ? 'nan' : String(v);
}

export function histogramSummary(h: Histogram): string {
  if (h.count === 0) return 'No recorded values';
  const iv = h.intervalQuantiles();
  const cu = h.cumulativeQuantiles();
  let out = '';
  for (let i = 0; i < SUPPORTED_QUANTILES.length; i++) out += `${i ? ' ' : ''}P${SUPPORTED_QUANTILES[i]}(${num(iv[i])},${num(cu[i])})`;
  return out;
}

export function statsText(stats: readonly Stat[], histograms: readonly Histogram[]): string {
  let out = '';
  for (const s of stats) out += `${s.name}: ${s.value}\n`;
  for (const h of histograms) out += `${h.name}: ${histogramSummary(h)}\n`;
  return out;
}

export function statsJson(stats: readonly Stat[], histograms: readonly Histogram[]): object {
  const out: object[] = stats.map((s) => ({ name: s.name, value: s.value }));
  if (histograms.length) {
    const orNull = (v: number): number | null => (Number.isNaN(v) ? null : v);
    const computed = histograms.map((h) => {
      const iv = h.intervalQuantiles();
      const cu = h.cumulativeQuantiles();
      return { name: h.name, values: iv.map((v, i) => ({ interval: orNull(v), cumulative: orNull(cu[i]) })) };
    });
    out.push({ histograms: { supported_quantiles: SUPPORTED_QUANTILES, computed_quantiles: computed } });
  }
  return { stats: out };
}
