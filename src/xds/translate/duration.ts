// Istio durations ("1h", "1m30s", "500ms", "10s") to Envoy's proto3 JSON form ("90s", "0.5s").
const PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g;
const UNIT: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };

export function toSeconds(d: string): number {
  let total = 0;
  let consumed = 0;
  for (const m of d.matchAll(PART)) {
    total += Number(m[1]) * UNIT[m[2]];
    consumed += m[0].length;
  }
  if (consumed !== d.length || d.length === 0) throw new Error(`invalid duration "${d}" (e.g. "10s", "500ms", "1m")`);
  return total;
}

export function envoyDuration(d: string): string {
  const s = toSeconds(d);
  const nanos = Math.round(s * 1e9);
  const whole = Math.floor(nanos / 1e9);
  const frac = nanos % 1e9;
  return frac === 0 ? `${whole}s` : `${whole}.${String(frac).padStart(9, '0').replace(/0+$/, '')}s`;
}
