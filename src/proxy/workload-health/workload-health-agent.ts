// The agent side of WorkloadGroup health (Istio's pilot-agent): when the proxy's node metadata
// carries PROXY_CONFIG.readinessProbe, the probe runs beside the workload and each change of its
// health goes to the control plane over the proxy's ADS stream.
import type { Logger } from '../../core/log.ts';
import { readinessProbeOf } from './readiness-probe.ts';
import { WorkloadHealthChecker } from './workload-health-checker.ts';
import { watchWorkloadProcess, type WorkloadProcess } from './workload-process.ts';

export interface WorkloadHealthAgentOptions {
  /** The proxy's node metadata. */
  metadata: Record<string, unknown>;
  /** Sends a report (XdsClient.reportHealth). */
  report: (healthy: boolean, message: string) => void;
  proxyNotReady?: () => string | undefined;
  /** Whether the proxy is still waiting for its first config (an unhealthy start is then no warning). */
  proxyStarting?: () => boolean;
  /** The workload's pid file (`rig proxy --workload-pid-file`): down at once while its process is not running. */
  pidFile?: string;
  /** The environment of exec probes (`rig proxy --probe-env-file`); default the agent's own, as Istio's agent. */
  execEnv?: NodeJS.ProcessEnv;
  log: Logger;
}

/** Explicit mode: workload port → the application's own port (RIG_EXPLICIT.appPorts; may be a JSON string). */
function appPortsOf(metadata: Record<string, unknown>): Record<string, number> | undefined {
  let explicit = metadata.RIG_EXPLICIT;
  if (typeof explicit === 'string') explicit = JSON.parse(explicit) as unknown;
  const ports = (explicit as { appPorts?: unknown } | undefined)?.appPorts;
  return ports && typeof ports === 'object' ? (ports as Record<string, number>) : undefined;
}

/**
 * Starts the health checker when the metadata asks for one (throws ReadinessProbeError on a bad
 * probe); returns its stop function, or undefined without a probe.
 */
export function startWorkloadHealth(o: WorkloadHealthAgentOptions): (() => void) | undefined {
  const probe = readinessProbeOf(o.metadata);
  if (!probe) return undefined;
  const log = o.log.child({ component: 'workload-health' });
  let workload: WorkloadProcess | undefined;
  let everHealthy = false;
  const checker = new WorkloadHealthChecker({
    probe,
    target: { appPorts: appPortsOf(o.metadata), execEnv: o.execEnv },
    proxyNotReady: o.proxyNotReady,
    workloadDown: () => workload?.down(),
    onChange: (e) => {
      everHealthy ||= e.healthy;
      if (e.healthy) log.info('workload is healthy; reporting to the control plane');
      // Every start begins so, until the first config arrives: not worth a warning.
      else if (!everHealthy && o.proxyStarting?.()) log.info({ reason: e.message }, 'workload is not ready yet (the proxy is starting); reporting to the control plane');
      else log.warn({ reason: e.message }, 'workload is unhealthy; reporting to the control plane');
      o.report(e.healthy, e.message);
    },
  });
  if (o.pidFile) workload = watchWorkloadProcess(o.pidFile, () => checker.recheck());
  checker.start();
  log.info({ method: Object.keys(probe).find((k) => ['httpGet', 'tcpSocket', 'exec', 'grpc'].includes(k)), initialDelaySeconds: probe.initialDelaySeconds ?? 0, periodSeconds: probe.periodSeconds || 10 }, 'running the workload readiness probe');
  return () => {
    checker.stop();
    workload?.close();
  };
}
