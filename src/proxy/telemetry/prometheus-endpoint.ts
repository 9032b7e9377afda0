// The Prometheus endpoint (`/stats/prometheus` on the stats port 15090 and on the admin port):
// the proxy's Envoy-style stats in Envoy's Prometheus naming, Istio's standard metrics
// (metric-families.ts) and the process metrics (CPU, RSS, event-loop lag) from prom-client.
import type http from 'node:http';
import type { Stats } from '../stats/stats.ts';
import { telemetryOf } from './proxy-telemetry.ts';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Wasm plugins' metrics: Envoy's custom stat namespace, exported without it and without `envoy_`. */
const WASM_CUSTOM = 'wasmcustom.';

/** Envoy's Prometheus name for a stat: `envoy_` and its tag-extracted name, its tags as labels. */
function promName(stats: Stats, n: string): { name: string; labels: string } {
  const { name, tags } = stats.tags.extract(n);
  return {
    name: name.startsWith(WASM_CUSTOM) ? sanitize(name.slice(WASM_CUSTOM.length)) : 'envoy_' + sanitize(name),
    labels: tags.length ? `{${tags.map((t) => `${sanitize(t.name)}="${escape(t.value)}"`).join(',')}}` : '',
  };
}

function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** Envoy stats in the text exposition format, series of one metric grouped under one TYPE line. */
export function envoyStatsText(stats: Stats): string {
  const groups = new Map<string, { kind: string; lines: string[] }>();
  for (const s of stats.all()) {
    const p = promName(stats, s.name);
    let g = groups.get(p.name);
    if (!g) groups.set(p.name, (g = { kind: s.kind, lines: [] }));
    g.lines.push(`${p.name}${p.labels} ${s.value}`);
  }
  let out = '';
  for (const [name, g] of groups) out += `# TYPE ${name} ${g.kind}\n${g.lines.join('\n')}\n`;
  return out + envoyHistogramsText(stats);
}

/** Envoy's histograms: cumulative `_bucket{le=...}` series (bounds in ms, then +Inf), `_sum` and `_count`. */
function envoyHistogramsText(stats: Stats): string {
  const groups = new Map<string, string>();
  for (const h of stats.histograms()) {
    const p = promName(stats, h.name);
    const tags = p.labels ? p.labels.slice(1, -1) + ',' : '';
    let lines = '';
    let n = 0;
    for (let i = 0; i < h.bounds.length; i++) {
      n += h.counts[i];
      lines += `${p.name}_bucket{${tags}le="${h.bounds[i]}"} ${n}\n`;
    }
    lines += `${p.name}_bucket{${tags}le="+Inf"} ${h.count}\n${p.name}_sum${p.labels} ${h.sum}\n${p.name}_count${p.labels} ${h.count}\n`;
    groups.set(p.name, (groups.get(p.name) ?? '') + lines);
  }
  let out = '';
  for (const [name, lines] of groups) out += `# TYPE ${name} histogram\n${lines}`;
  return out;
}

/** The whole scrape: Envoy stats, then Istio's and the process metrics. */
export async function prometheusText(stats: Stats): Promise<string> {
  const t = telemetryOf(stats);
  return envoyStatsText(stats) + (t ? t.metrics.render() + (await t.registry.metrics()) : '');
}

/** Request handler of the stats port: GET /stats/prometheus (Istio's 15090). */
export function createStatsHandler(stats: Stats): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/stats/prometheus' && path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: the stats port serves /stats/prometheus\n');
      return;
    }
    prometheusText(stats).then(
      (text) => {
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
        res.end(text);
      },
      (e: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`cannot render metrics: ${(e as Error).message}\n`);
      },
    );
  };
}
