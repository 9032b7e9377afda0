// The status file `rig up` keeps in its state directory, read by `rig status`, `rig logs`,
// `rig down` and `rig apply` from other terminals.

export const PROCESS_STATES = ['starting', 'ready', 'crashed', 'failed', 'stopping', 'stopped'] as const;
export type ProcessState = (typeof PROCESS_STATES)[number];

export interface ProxyPorts {
  /** Workload port → the sidecar's inbound listener port (the mesh reaches the workload there). */
  inbound?: Record<string, number>;
  /** Workload port → the loopback port the application listens on. */
  app?: Record<string, number>;
  outbound?: number;
  admin?: number;
  stats?: number;
  ready?: number;
  /** Gateway server port (as declared in the Gateway) → host port it is bound on. */
  gateway?: Record<string, number>;
}

export interface ProcessStatus {
  /** The replica (`reviews-v1-0`), gateway (`istio-ingressgateway`) or `controlplane`. */
  name: string;
  kind: 'workload' | 'gateway' | 'controlplane';
  /** The Workload this replica belongs to. */
  workload?: string;
  namespace?: string;
  /** `--isolation netns`: the replica's network namespace and its address on the pod bridge. */
  netns?: string;
  address?: string;
  state: ProcessState;
  /** For workload replicas: the states of the app and of its sidecar, whose combination is `state`. */
  appState?: ProcessState;
  proxyState?: ProcessState;
  /** The application's pid (for gateways and the control plane: their own pid). */
  pid?: number;
  /** The sidecar's pid. */
  proxyPid?: number;
  restarts: number;
  /** Why the process is not ready (crash reason, probe failure, missing command...). */
  message?: string;
  ports: ProxyPorts;
  /** Log files, relative to the state directory. */
  logs: { app?: string; proxy?: string };
  since: string;
}

export interface MeshStatus {
  /** The `rig up` process. */
  pid: number;
  startedAt: string;
  /** Set once every process was ready for the first time. */
  readyAt?: string;
  cwd: string;
  configPaths: string[];
  /** The directory `rig apply` writes to; the control plane and `rig up` watch it. */
  appliedDir: string;
  controlPlane?: { xdsAddress: string; monitoringPort?: number };
  gatewayBind: string;
  /** explicit (HTTP_PROXY, loopback ports) or netns (a network namespace per replica). */
  isolation?: 'explicit' | 'netns';
  processes: ProcessStatus[];
  /** Config problems currently refused (the last good config stays in force). */
  configErrors: string[];
}

/** The host the control plane listens on (127.0.0.1, or the pod bridge's address with --isolation netns). */
export function controlPlaneHost(s: MeshStatus): string {
  return s.controlPlane?.xdsAddress.replace(/:\d+$/, '') ?? '127.0.0.1';
}

/** The monitoring URL of the control plane of a local mesh that is running, if any. */
export function runningMonitoringUrl(s: MeshStatus | undefined, alive: (pid: number) => boolean): string | undefined {
  if (!s || !alive(s.pid) || !s.controlPlane?.monitoringPort) return undefined;
  return `http://${controlPlaneHost(s)}:${s.controlPlane.monitoringPort}`;
}

export function overallState(processes: readonly ProcessStatus[]): ProcessState {
  if (processes.some((p) => p.state === 'failed')) return 'failed';
  if (processes.some((p) => p.state === 'crashed')) return 'crashed';
  if (processes.every((p) => p.state === 'ready')) return 'ready';
  return 'starting';
}

/** One line of a process's ports, e.g. `inbound 9080→40123  outbound 35787  admin 36613  stats 36613`. */
export function describePorts(p: ProcessStatus): string {
  const parts: string[] = p.address ? [`pod ${p.address}`] : [];
  if (p.ports.gateway) parts.push(`gateway ${Object.entries(p.ports.gateway).map(([d, h]) => (d === String(h) ? d : `${d}→${h}`)).join(',')}`);
  if (p.ports.inbound && Object.keys(p.ports.inbound).length) parts.push(`inbound ${Object.entries(p.ports.inbound).map(([w, i]) => `${w}→${i}`).join(',')}`);
  if (p.ports.outbound) parts.push(`outbound ${p.ports.outbound}`);
  if (p.ports.admin) parts.push(`admin ${p.ports.admin}`);
  if (p.ports.stats) parts.push(`stats ${p.ports.stats}`);
  return parts.join('  ');
}
