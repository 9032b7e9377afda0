// The readiness probe a replica's sidecar runs (its agent: src/proxy/workload-health), which
// decides whether the replica is an endpoint, as a Kubernetes pod's readiness does (CONTRACTS §3).
// It is the Workload's readinessProbe in the agent's shape (Istio's ReadinessProbe, the same
// fields as Kubernetes'), with port names resolved and the local default period of 1 s; a Workload
// that declares none and has ports is ready once its app accepts connections on its first port
// (the local stand-in for "its container has started").
import type { WorkloadProbe, WorkloadSpec } from '../api/index.ts';
import { resolveCommand } from './workload-env.ts';

/** Istio's ReadinessProbe as `rig proxy --readiness-probe` takes it (ports are numbers). */
export type SidecarProbe = Omit<WorkloadProbe, 'httpGet' | 'tcpSocket'> & {
  httpGet?: Omit<NonNullable<WorkloadProbe['httpGet']>, 'port'> & { port: number };
  tcpSocket?: { port: number; host?: string };
};

/** Kubernetes' default is 10 s; a local mesh should notice a ready replica within a second. */
export const LOCAL_PERIOD_SECONDS = 1;
/** Kubernetes' readiness default; the agent's own (Istio's WorkloadGroup probe) is 1, so it is given explicitly. */
export const KUBERNETES_FAILURE_THRESHOLD = 3;

export function sidecarProbe(spec: WorkloadSpec): SidecarProbe | undefined {
  const p = spec.readinessProbe;
  if (!p) {
    const first = spec.ports?.[0];
    return first ? { tcpSocket: { port: first.port }, periodSeconds: LOCAL_PERIOD_SECONDS, failureThreshold: KUBERNETES_FAILURE_THRESHOLD } : undefined;
  }
  // Validation accepts only names of declared ports.
  const port = (v: number | string) => (typeof v === 'number' ? v : (spec.ports ?? []).find((x) => x.name === v)!.port);
  const { httpGet, tcpSocket, exec, ...rest } = p;
  return {
    ...rest,
    periodSeconds: p.periodSeconds ?? LOCAL_PERIOD_SECONDS,
    failureThreshold: p.failureThreshold ?? KUBERNETES_FAILURE_THRESHOLD,
    ...(httpGet ? { httpGet: { ...httpGet, port: port(httpGet.port) } } : {}),
    ...(tcpSocket ? { tcpSocket: { ...tcpSocket, port: port(tcpSocket.port) } } : {}),
    // `node` is the Node.js that runs rig, as for the Workload's command.
    ...(exec ? { exec: { command: [resolveCommand(exec.command[0]), ...exec.command.slice(1)] } } : {}),
  };
}
