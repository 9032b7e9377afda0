// Outlier detection as a cluster hook (cluster-hooks.ts): every attempt's outcome goes to the
// cluster's OutlierDetector; ejections and returns rebuild the cluster's load balancer.
// /clusters shows outlier::success_rate_average / success_rate_ejection_threshold (−1: not computed).
import type { ClusterHandle, ClusterHook, ClusterHookFactory } from './cluster-hooks.ts';
import { UpstreamOutcome, compileHookConfig, registerClusterHook } from './cluster-hooks.ts';
import type { Host } from './host.ts';
import { OutlierDetector, compileOutlierDetection, type LocalOriginResult } from './outlier-detection.ts';

const byCluster = new WeakMap<ClusterHandle, OutlierDetector>();

/** The cluster's detector (health checking un-ejects hosts that pass an active check). */
export function outlierDetectorOf(cluster: ClusterHandle): OutlierDetector | undefined {
  return byCluster.get(cluster);
}

const LOCAL: Record<number, LocalOriginResult> = {
  [UpstreamOutcome.ConnectFailed]: 'connect_failed',
  [UpstreamOutcome.Reset]: 'reset',
  [UpstreamOutcome.Timeout]: 'timeout',
};

class OutlierDetectionHook implements ClusterHook {
  readonly #od: OutlierDetector;

  constructor(od: OutlierDetector) {
    this.#od = od;
  }

  onResult(host: Host, outcome: number, status: number): void {
    const local = LOCAL[outcome];
    if (local !== undefined) {
      this.#od.reportResult(host, { localOrigin: local });
      return;
    }
    // No status: a TCP proxy connection, complete once connected.
    if (status === 0) {
      this.#od.reportResult(host, { localOrigin: 'success_final' });
      return;
    }
    this.#od.reportResult(host, { localOrigin: 'success' });
    this.#od.reportResult(host, { status });
  }

  onHostsChanged(hosts: readonly Host[]): void {
    this.#od.updateHosts(hosts);
  }

  adminInfo(): string[] {
    const sr = this.#od.lastSuccessRate;
    return [`outlier::success_rate_average::${sr.average}`, `outlier::success_rate_ejection_threshold::${sr.threshold}`];
  }

  stop(): void {
    this.#od.close();
  }
}

export const outlierDetectionHookFactory: ClusterHookFactory = {
  name: 'envoy.outlier_detection',
  create(cluster: ClusterHandle, issues) {
    const config = compileHookConfig(cluster, issues, compileOutlierDetection);
    if (!config) return undefined;
    const od = new OutlierDetector(config, cluster.hosts(), { stats: cluster.stats, prefix: cluster.statPrefix });
    od.on('change', () => cluster.healthChanged());
    byCluster.set(cluster, od);
    return new OutlierDetectionHook(od);
  },
};

export function setup(): void {
  registerClusterHook(outlierDetectionHookFactory);
}
