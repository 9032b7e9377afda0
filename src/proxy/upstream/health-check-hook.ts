// Active health checking as a cluster hook (cluster-hooks.ts): the cluster's HealthChecker follows
// its host set; health changes rebuild the load balancer; a passing check un-ejects an outlier
// (successful_active_health_check_uneject_host); the first attempt's result marks the cluster as
// having traffic (ends no_traffic_interval). The checker connects with the cluster's tcp_keepalive,
// upstream_bind_config and transport sockets (TLS with its SDS secrets, the PROXY header of upstream_proxy_protocol).
import type { ClusterHandle, ClusterHook, ClusterHookFactory } from './cluster-hooks.ts';
import { compileHookConfig, registerClusterHook } from './cluster-hooks.ts';
import type { Host } from './host.ts';
import { HealthChecker, compileHealthChecks } from './health-check.ts';
import { outlierDetectorOf } from './outlier-detection-hook.ts';

class HealthCheckHook implements ClusterHook {
  readonly #hc: HealthChecker;
  #traffic = false;

  constructor(hc: HealthChecker) {
    this.#hc = hc;
  }

  onResult(): void {
    if (this.#traffic) return;
    this.#traffic = true;
    this.#hc.markTraffic();
  }

  onHostsChanged(hosts: readonly Host[]): void {
    this.#hc.updateHosts(hosts);
  }

  stop(): void {
    this.#hc.close();
  }
}

export const healthCheckHookFactory: ClusterHookFactory = {
  name: 'envoy.health_checkers',
  create(cluster: ClusterHandle, issues) {
    const config = compileHookConfig(cluster, issues, compileHealthChecks);
    if (!config) return undefined;
    const hc = new HealthChecker(config, cluster.hosts(), {
      stats: cluster.stats,
      prefix: cluster.statPrefix,
      onSuccess: (h) => outlierDetectorOf(cluster)?.onActiveHealthCheckSuccess(h),
      tcpKeepalive: cluster.config.tcpKeepalive,
      sourceAddress: cluster.config.sourceAddress,
      transport: cluster,
    });
    hc.on('change', () => cluster.healthChanged());
    return new HealthCheckHook(hc);
  },
};

export function setup(): void {
  registerClusterHook(healthCheckHookFactory);
}
