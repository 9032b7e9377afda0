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

// The sub-scopes HTTP filters write under http.<prefix>. (the shortest prefix wins: a filter's own
// stat_prefix may repeat a scope name).
const HTTP_FILTER_SCOPE = /^http\.(.+?)\.((?:ext_authz|rbac|fault|cors|jwt_authn|health_check|user_agent)\..+)$/;

/** Envoy's Prometheus name for a stat: the scope's name becomes a label (envoy_cluster_name, ...). */
function promName(n: string): { name: string; labels: string } {
  // Cluster names contain dots (FQDNs): the name ends where the stat (with an optional sub-scope) begins.
  const m = /^cluster\.(.+?)\.((?:circuit_breakers\.(?:default|high)|outlier_detection|health_check|lb_subsets|http1|http2)\.)?([a-z0-9_]+)$/.exec(n);
  if (m) return { name: `envoy_cluster_${(m[2] ?? '').replace(/\./g, '_')}${m[3]}`, labels: `{envoy_cluster_name="${escape(m[1])}"}` };
  // HTTP filters' stats live in a sub-scope of the connection manager's (http.<prefix>.rbac.allowed):
  // only the prefix becomes the label, the filter's scope stays in the metric name.
  const f = HTTP_FILTER_SCOPE.exec(n) ?? /^http\.(.+)\.([a-z0-9_]+)$/.exec(n);
  if (f) return { name: `envoy_http_${f[2].replace(/[^a-zA-Z0-9_]/g, '_')}`, labels: `{envoy_http_conn_manager_prefix="${escape(f[1])}"}` };
  const l = /^listener\.(.+)\.([a-z0-9_]+)$/.exec(n);
  if (l) return { name: `envoy_listener_${l[2]}`, labels: `{envoy_listener_address="${escape(l[1])}"}` };
  const t = /^tcp\.(.+)\.([a-z0-9_]+)$/.exec(n);
  if (t) return { name: `envoy_tcp_${t[2]}`, labels: `{envoy_tcp_prefix="${escape(t[1])}"}` };
  return { name: 'envoy_' + n.replace(/[^a-zA-Z0-9_]/g, '_'), labels: '' };
}

/** Envoy stats in the text exposition format, series of one metric grouped under one TYPE line. */
export function envoyStatsText(stats: Stats): string {
  const groups = new Map<string, { kind: string; lines: string[] }>();
  for (const s of stats.all()) {
    const p = promName(s.name);
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
    const p = promName(h.name);
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
