// Per-proxy telemetry state: the Prometheus registry (Istio's standard metrics and process
// metrics), this proxy's peer metadata, and the node. One per ProxyRuntime, found from the
// compile contexts through the proxy's Stats object (HTTP filters get `stats`, not the context).
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeInfo, ProxyContext } from '../context.ts';
import type { Stats } from '../stats/stats.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { localPeer, type LocalPeer } from './peer-metadata.ts';
import { IstioMetrics } from './istio-metrics.ts';

export class ProxyTelemetry {
  readonly node: NodeInfo;
  readonly stats: Stats;
  readonly clusters: ClusterManager;
  readonly registry = new Registry();
  readonly local: LocalPeer;
  readonly metrics: IstioMetrics;

  constructor(ctx: ProxyContext) {
    this.node = ctx.node;
    this.stats = ctx.stats;
    this.clusters = ctx.clusters;
    this.local = localPeer(ctx.node);
    // process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_seconds, ...
    // The event-loop lag histogram samples with a timer: at prom-client's default 10 ms it woke an
    // idle proxy 100 times a second (11 ms of CPU per second idle); once a second costs ~1 ms.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 });
    this.metrics = new IstioMetrics();
  }
}

const byStats = new WeakMap<Stats, ProxyTelemetry>();

/** Creates the telemetry state of a proxy (ProxyRuntime does this once). */
export function attachTelemetry(ctx: ProxyContext): ProxyTelemetry {
  let t = byStats.get(ctx.stats);
  if (!t) {
    t = new ProxyTelemetry(ctx);
    byStats.set(ctx.stats, t);
  }
  return t;
}

export function telemetryOf(stats: Stats): ProxyTelemetry | undefined {
  return byStats.get(stats);
}
