// The loopback ports of one workload replica in explicit mode (docs/CONTRACTS.md §3): for each
// workload port P the sidecar's inbound port and the app's port, and the sidecar's outbound
// (HTTP proxy) port. The admin, stats and readiness ports are picked by the proxy itself and
// read back from its ports file.
import type { PortAllocator } from './ports.ts';
import type { ReplicaPlan } from './mesh-plan.ts';

export interface ReplicaPorts {
  inbound: Record<string, number>;
  app: Record<string, number>;
  outbound: number;
  /** `host:port` of an upstream → the sidecar's local port for it. */
  upstream: Record<string, number>;
}

export async function allocateReplicaPorts(replica: ReplicaPlan, ports: PortAllocator): Promise<ReplicaPorts> {
  const inbound: Record<string, number> = {};
  const app: Record<string, number> = {};
  for (const p of replica.spec.ports ?? []) {
    inbound[p.port] = await ports.allocate();
    app[p.port] = await ports.allocate();
  }
  const upstream: Record<string, number> = {};
  for (const u of replica.upstreams) upstream[u] = await ports.allocate();
  return { inbound, app, outbound: await ports.allocate(), upstream };
}

export function releaseReplicaPorts(rp: ReplicaPorts, ports: PortAllocator): void {
  for (const p of [...Object.values(rp.inbound), ...Object.values(rp.app), ...Object.values(rp.upstream), rp.outbound]) ports.release(p);
}
