// The command lines of `rig proxy` for a workload's sidecar and for a gateway in explicit mode
// (docs/CONTRACTS.md §3 and §4). Node metadata is given by flags; the proxy picks its admin,
// stats and readiness ports and writes them to its ports file. A sidecar's agent runs the
// replica's readiness probe (replica-probe.ts) and reports its health to the control plane.
import type { GatewayPlan, ReplicaPlan } from './mesh-plan.ts';
import type { ReplicaPorts } from './replica-ports.ts';
import { sidecarProbe } from './replica-probe.ts';

export interface ProxyCommon {
  xdsAddress: string;
  portsFile: string;
  /** Certificates: the CA's address, its root certificate, this proxy's bootstrap token and the mesh's trust domain (MeshConfig trustDomain; rig proxy's default cluster.local when unset). */
  ca?: { address: string; rootFile: string; tokenFile: string; trustDomain?: string };
  /** Extra flags, e.g. the tracing sampling rate of `rig demo`. */
  extra?: string[];
}

function labelsFlag(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function caArgs(ca: NonNullable<ProxyCommon['ca']>): string[] {
  const args = ['--ca-address', ca.address, '--ca-root-file', ca.rootFile, '--token-file', ca.tokenFile];
  return ca.trustDomain ? [...args, '--trust-domain', ca.trustDomain] : args;
}

function common(c: ProxyCommon): string[] {
  const args = ['--xds-address', c.xdsAddress, '--admin-port', '0', '--stats-port', '0', '--ready-port', '0', '--ports-file', c.portsFile];
  if (c.ca) args.push(...caArgs(c.ca));
  return [...args, ...(c.extra ?? [])];
}

// As in Istio, the replica (pod) names the proxy, unique per proxy and the NAME of `rig status`,
// while WORKLOAD_NAME, the workload of Istio's metrics, is the same for every replica.
function workloadFlags(replica: ReplicaPlan): string[] {
  return ['--workload-name', replica.workload, '--pod-name', replica.name];
}

/** The node id `rig proxy` makes of these flags (CONTRACTS §2): how the control plane knows the replica's sidecar. */
export function sidecarNodeId(replica: ReplicaPlan, instanceIp: string): string {
  return `sidecar~${instanceIp}~${replica.name}.${replica.namespace}~${replica.namespace}.svc.cluster.local`;
}

/** The replica's readiness, run by the sidecar's agent and reported to the control plane. */
function probeArgs(replica: ReplicaPlan): string[] {
  const probe = sidecarProbe(replica.spec);
  return probe ? ['--readiness-probe', JSON.stringify(probe)] : [];
}

export function sidecarArgs(replica: ReplicaPlan, ports: ReplicaPorts, c: ProxyCommon): string[] {
  const args = [
    'proxy',
    '--mode', 'sidecar',
    '--namespace', replica.namespace,
    ...workloadFlags(replica),
    '--service-account', replica.serviceAccount,
    '--labels', labelsFlag(replica.labels),
    '--instance-ip', '127.0.0.1',
    '--interception', 'explicit',
    '--bind', '127.0.0.1',
    '--outbound-port', String(ports.outbound),
  ];
  for (const p of replica.spec.ports ?? []) {
    args.push('--workload-port', [p.port, p.name ?? '', p.protocol ?? ''].join('/').replace(/\/+$/, ''));
    args.push('--inbound-port', `${p.port}=${ports.inbound[p.port]}`, '--app-port', `${p.port}=${ports.app[p.port]}`);
  }
  for (const [hostPort, local] of Object.entries(ports.upstream)) args.push('--upstream-port', `${hostPort}=${local}`);
  return [...args, ...probeArgs(replica), ...common(c)];
}

/**
 * A pod's sidecar (`--isolation netns`): traffic captured by the pod's iptables rules, Istio's
 * fixed ports (15000 admin, 15001/15006 listeners, 15021 ready, 15090 stats) inside the pod.
 */
export function podSidecarArgs(replica: ReplicaPlan, address: string, c: ProxyCommon): string[] {
  const args = [
    'proxy',
    '--mode', 'sidecar',
    '--namespace', replica.namespace,
    ...workloadFlags(replica),
    '--service-account', replica.serviceAccount,
    '--labels', labelsFlag(replica.labels),
    '--instance-ip', address,
    '--interception', 'redirect',
    '--xds-address', c.xdsAddress,
    '--ports-file', c.portsFile,
  ];
  for (const p of replica.spec.ports ?? []) args.push('--workload-port', [p.port, p.name ?? '', p.protocol ?? ''].join('/').replace(/\/+$/, ''));
  args.push(...probeArgs(replica));
  if (c.ca) args.push(...caArgs(c.ca));
  return [...args, ...(c.extra ?? [])];
}

export function gatewayArgs(gw: GatewayPlan, bind: string, portMap: Record<string, number>, c: ProxyCommon): string[] {
  const args = [
    'proxy',
    '--mode', 'router',
    '--namespace', gw.namespace,
    '--workload-name', gw.name,
    '--service-account', gw.serviceAccount,
    '--labels', labelsFlag(gw.labels),
    '--instance-ip', '127.0.0.1',
    '--interception', 'explicit',
    '--bind', bind,
  ];
  for (const [port, hostPort] of Object.entries(portMap)) args.push('--inbound-port', `${port}=${hostPort}`);
  return [...args, ...common(c)];
}
