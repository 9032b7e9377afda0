// Envoy's admin API (127.0.0.1:15000 by default): /ready, /server_info, /config_dump, /stats
// (text, ?format=json, ?filter=, ?usedonly; histograms as quantiles), /stats/prometheus, /clusters, /listeners, /drain_listeners,
// /healthcheck/fail|ok, /logging (logging.ts), /memory, /runtime, /runtime_modify, /quitquitquit. Plus the readiness endpoint (15021
// /healthz/ready) served by a second, tiny server.
import type http from 'node:http';
import type { EnvoyJson } from '../../envoy/index.ts';
import { VERSION } from '../../core/version.ts';
import type { ProxyRuntime } from '../runtime.ts';
import { configDump } from './config-dump.ts';
import { memoryReport } from './memory.ts';
import { HealthFlag } from '../upstream/host.ts';
import { healthFlagsString } from '../upstream/health-check-flags.ts';
import { prometheusText, PROMETHEUS_CONTENT_TYPE } from '../telemetry/prometheus-endpoint.ts';
import { statsJson, statsText } from './stats-output.ts';
import { runtimeDump, runtimeModify } from './runtime-endpoints.ts';
import { LogLevelError, type LogLevels } from './logging.ts';
import { isPipe } from '../network/pipe-address.ts';
import type { Cluster, UpstreamHost } from '../upstream/cluster.ts';
import { outlierDetectorOf } from '../upstream/outlier-detection-hook.ts';

export interface AdminOptions {
  runtime: ProxyRuntime;
  bootstrap: EnvoyJson;
  commandLine: string[];
  /** Called for POST /quitquitquit. */
  onQuit: () => void;
  /** The proxy's loggers, for /logging. */
  logLevels: LogLevels;
}

function send(res: http.ServerResponse, status: number, body: string | object, type?: string): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': type ?? (typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json'), 'cache-control': 'no-cache, max-age=0' });
  res.end(text);
}

/** Envoy's per-host stats (ALL_HOST_STATS: counters, then gauges), as /clusters lists them. */
function hostStats(h: UpstreamHost): readonly [name: string, value: number, gauge: boolean][] {
  return [
    ['cx_connect_fail', h.cxConnectFail, false],
    ['cx_total', h.cxTotal, false],
    ['rq_error', h.rqError, false],
    ['rq_success', h.rqSuccess, false],
    ['rq_timeout', h.rqTimeout, false],
    ['rq_total', h.rqTotal, false],
    ['cx_active', h.cxActive, true],
    ['rq_active', h.activeRequests, true],
  ];
}

/** A SimpleMetric in proto3 JSON, as Envoy writes it: uint64 as a string, zero value and COUNTER type left out. */
function simpleMetric([name, value, gauge]: readonly [string, number, boolean]): Record<string, string> {
  const m: Record<string, string> = {};
  if (gauge) m.type = 'GAUGE';
  if (value !== 0) m.value = String(value);
  m.name = name;
  return m;
}

/** Envoy's host canary flag: endpoint metadata envoy.lb canary. */
function isCanary(h: UpstreamHost): boolean {
  return h.metadata['envoy.lb']?.canary === true;
}

/** A host's lines of /clusters text, in Envoy's order (ClustersHandler::writeClustersAsText): stats by name, then the host's attributes. */
function hostLines(c: Cluster, h: UpstreamHost, lines: string[]): void {
  const p = `${c.name}::${h.key}`;
  const stats = hostStats(h).toSorted((a, b) => (a[0] < b[0] ? -1 : 1));
  for (const [name, value] of stats) lines.push(`${p}::${name}::${value}`);
  const od = outlierDetectorOf(c);
  lines.push(
    `${p}::hostname::${h.hostname ?? ''}`,
    `${p}::health_flags::${healthFlagsString(h)}`,
    `${p}::weight::${h.weight}`,
    `${p}::region::${h.locality.region ?? ''}`,
    `${p}::zone::${h.locality.zone ?? ''}`,
    `${p}::sub_zone::${h.locality.sub_zone ?? ''}`,
    `${p}::canary::${isCanary(h)}`,
    `${p}::priority::${h.priority}`,
    `${p}::success_rate::${od?.hostSuccessRate(h, false) ?? -1}`,
    `${p}::local_origin_success_rate::${od?.hostSuccessRate(h, true) ?? -1}`,
  );
}

/** admin.v3.HostHealthStatus as Envoy's proto3 JSON writes it: the flags that are set only. */
function healthStatus(h: UpstreamHost): Record<string, unknown> {
  const s: Record<string, unknown> = { eds_health_status: h.edsFlags ? 'UNHEALTHY' : 'HEALTHY' };
  if (h.healthFlags & HealthFlag.FailedActiveHc) s.failed_active_health_check = true;
  if (h.healthFlags & HealthFlag.FailedOutlierCheck) s.failed_outlier_check = true;
  if (h.healthFlags & HealthFlag.PendingActiveHc) s.pending_active_hc = true;
  return s;
}

/** A host of /clusters?format=json (admin.v3.HostStatus as Envoy writes it). */
function hostStatus(c: Cluster, h: UpstreamHost): Record<string, unknown> {
  const od = outlierDetectorOf(c);
  const sr = od?.hostSuccessRate(h, false) ?? -1;
  const localSr = od?.hostSuccessRate(h, true) ?? -1;
  return {
    address: { socket_address: { address: h.address, port_value: h.port } },
    stats: hostStats(h).map(simpleMetric),
    health_status: healthStatus(h),
    ...(sr >= 0 ? { success_rate: { value: sr } } : {}),
    weight: h.weight,
    ...(h.hostname ? { hostname: h.hostname } : {}),
    priority: h.priority,
    ...(localSr >= 0 ? { local_origin_success_rate: { value: localSr } } : {}),
    locality: h.locality,
  };
}

export function createAdminHandler(o: AdminOptions): http.RequestListener {
  const rt = o.runtime;
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const q = url.searchParams;
    const json = q.get('format') === 'json';
    const post = req.method === 'POST';
    switch (url.pathname) {
      case '/':
        return send(res, 200, ['/ready', '/server_info', '/config_dump', '/stats', '/stats/prometheus', '/clusters', '/listeners', '/memory', '/runtime', 'POST /runtime_modify?key=value', 'POST /drain_listeners', 'POST /healthcheck/fail', 'POST /healthcheck/ok', '/logging', 'POST /logging?level=|<logger>=|paths=', 'POST /quitquitquit'].join('\n') + '\n');
      case '/ready': {
        const state = rt.state();
        return send(res, state === 'LIVE' ? 200 : 503, state + '\n');
      }
      case '/server_info': {
        const up = Math.floor((Date.now() - rt.startedAt) / 1000);
        return send(res, 200, { version: `rigging/${VERSION}`, state: rt.state(), hot_restart_version: 'disabled', command_line_options: { argv: o.commandLine }, node: o.bootstrap.node ?? {}, uptime_current_epoch: `${up}s`, uptime_all_epochs: `${up}s` });
      }
      case '/config_dump':
        return send(res, 200, configDump(rt, o.bootstrap, { includeEds: q.has('include_eds'), resource: q.get('resource') ?? undefined }));
      case '/stats': {
        let stats = rt.stats.all();
        let histograms = rt.stats.histograms();
        const f = q.get('filter');
        if (f) {
          let re: RegExp;
          try {
            re = new RegExp(f);
          } catch (e) {
            return send(res, 400, `invalid filter regex: ${(e as Error).message}\n`);
          }
          stats = stats.filter((s) => re.test(s.name));
          histograms = histograms.filter((h) => re.test(h.name));
        }
        if (q.has('usedonly')) {
          stats = stats.filter((s) => s.value !== 0);
          histograms = histograms.filter((h) => h.count !== 0);
        }
        if (json) return send(res, 200, statsJson(stats, histograms));
        return send(res, 200, statsText(stats, histograms));
      }
      case '/stats/prometheus':
        // Envoy stats, Istio's standard metrics and process metrics (src/proxy/telemetry).
        prometheusText(rt.stats).then(
          (text) => send(res, 200, text, PROMETHEUS_CONTENT_TYPE),
          (e: unknown) => send(res, 500, `cannot render metrics: ${(e as Error).message}\n`),
        );
        return;
      case '/clusters': {
        const clusters = rt.ctx.clusters.all();
        if (json) {
          return send(res, 200, {
            cluster_statuses: clusters.map((c) => ({
              name: c.name,
              added_via_api: !rt.ctx.clusters.isStatic(c.name),
              host_statuses: c.hosts().map((h) => hostStatus(c, h)),
            })),
          });
        }
        const lines: string[] = [];
        for (const c of clusters) {
          // <priority>_priority::max_* lines come from the circuit breaker hook's adminInfo().
          lines.push(`${c.name}::added_via_api::${!rt.ctx.clusters.isStatic(c.name)}`);
          for (const h of c.hooks) for (const l of h.adminInfo?.() ?? []) lines.push(`${c.name}::${l}`);
          for (const h of c.hosts()) hostLines(c, h, lines);
        }
        return send(res, 200, lines.join('\n') + '\n');
      }
      case '/listeners': {
        const ls = rt.listeners.listeners();
        const local = (a: string, port: number) => (isPipe(a) ? { pipe: { path: a } } : { socket_address: { address: a, port_value: port } });
        if (json) return send(res, 200, { listener_statuses: ls.map((l) => ({ name: l.config.name, local_address: local(l.config.address, l.boundPort || l.config.port), state: l.state, error: l.error })) });
        return send(res, 200, ls.map((l) => `${l.config.name}::${isPipe(l.config.address) ? l.config.address : `${l.config.address}:${l.boundPort || l.config.port}`}`).join('\n') + '\n');
      }
      case '/memory':
        return send(res, 200, memoryReport());
      case '/runtime':
        return runtimeDump(rt.ctx.runtime, res, send);
      case '/runtime_modify':
        return runtimeModify(rt.ctx.runtime, req, q, res, send);
      case '/drain_listeners':
        if (!post) return send(res, 405, 'use POST\n');
        rt.ctx.draining = true;
        rt.listeners.stopAccepting();
        return send(res, 200, 'OK\n');
      case '/healthcheck/fail':
        if (!post) return send(res, 405, 'use POST\n');
        rt.healthCheckFailed = true;
        return send(res, 200, 'OK\n');
      case '/healthcheck/ok':
        if (!post) return send(res, 405, 'use POST\n');
        rt.healthCheckFailed = false;
        return send(res, 200, 'OK\n');
      case '/logging': {
        if (q.size && !post) return send(res, 405, 'use POST to change log levels\n');
        try {
          o.logLevels.apply(q);
        } catch (err) {
          if (!(err instanceof LogLevelError)) throw err;
          return send(res, 400, `error: ${err.message}\nusage: POST /logging?level=<level> | ?<logger>=<level> | ?paths=<logger>:<level>,...\n${o.logLevels.render()}`);
        }
        return send(res, 200, o.logLevels.render());
      }
      case '/quitquitquit':
        if (!post) return send(res, 405, 'use POST\n');
        send(res, 200, 'OK\n');
        o.onQuit();
        return;
      default:
        return send(res, 404, `no admin endpoint ${url.pathname}; GET / lists them\n`);
    }
  };
}

export function createReadyHandler(rt: ProxyRuntime): http.RequestListener {
  return (req, res) => {
    if (req.url === '/healthz/ready' || req.url?.startsWith('/healthz/ready?')) {
      const ok = rt.isReady();
      return send(res, ok ? 200 : 503, ok ? '' : `${rt.healthCheckFailed ? 'health check failed' : rt.state()}\n`);
    }
    send(res, 404, 'not found\n');
  };
}

export { listen } from '../../core/listen.ts';
