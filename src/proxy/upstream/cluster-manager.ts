// Owns the clusters (static from the bootstrap, dynamic from CDS) and their endpoints (inline
// load_assignment, EDS, or DNS for STRICT_DNS / LOGICAL_DNS). Lookups by name on the request path
// go through a plain Map; a CDS update swaps Cluster objects and closes the replaced ones
// gracefully.
import type { Stats } from '../stats/stats.ts';
import type { Issues } from '../config/reader.ts';
import type { SecretStore } from '../tls/secrets.ts';
import type { Logger } from '../../core/log.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';
import { Cluster } from './cluster.ts';
import { ClusterDns } from './cluster-dns.ts';
import { NEVER } from '../config/fractional-percent.ts';
import { DiscoveryType, type ClusterConfig, type LoadAssignment } from './cluster-config.ts';

export class ClusterManager {
  private readonly clusters = new Map<string, Cluster>();
  private readonly staticNames = new Set<string>();
  private readonly assignments = new Map<string, LoadAssignment>();
  private readonly dns = new Map<string, ClusterDns>();
  private readonly stats: Stats;
  private readonly secrets: SecretStore;
  private readonly log: Logger;
  /** Called when a cluster gets its first hosts (readiness / warming). */
  onChange: () => void = () => undefined;

  /** Envoy's runtime, for the balancers' upstream.healthy_panic_threshold. */
  private readonly runtime: EnvoyRuntime | undefined;

  constructor(stats: Stats, secrets: SecretStore, log: Logger, runtime?: EnvoyRuntime) {
    this.stats = stats;
    this.secrets = secrets;
    this.log = log;
    this.runtime = runtime;
  }

  get(name: string): Cluster | undefined {
    return this.clusters.get(name);
  }

  all(): Cluster[] {
    return [...this.clusters.values()];
  }

  isStatic(name: string): boolean {
    return this.staticNames.has(name);
  }

  addStatic(config: ClusterConfig, issues: Issues): void {
    this.staticNames.add(config.name);
    this.install(config, issues);
  }

  /** State of the world for CDS: `configs` replaces every dynamic cluster. Unchanged clusters are kept. */
  applyDynamic(configs: readonly ClusterConfig[], issues: Issues): void {
    const names = new Set(configs.map((c) => c.name));
    for (const [name, c] of this.clusters) {
      if (!this.staticNames.has(name) && !names.has(name)) {
        this.clusters.delete(name);
        this.stopDns(name);
        c.close();
        this.stats.removePrefix(`cluster.${name}.`);
      }
    }
    for (const c of configs) {
      if (this.staticNames.has(c.name)) {
        issues.error(c.name, `cluster ${c.name} is defined statically in the bootstrap and cannot be replaced by CDS`);
        continue;
      }
      const old = this.clusters.get(c.name);
      if (old && JSON.stringify(old.config.raw) === JSON.stringify(c.raw)) continue;
      this.install(c, issues);
    }
  }

  private install(config: ClusterConfig, issues: Issues): void {
    const old = this.clusters.get(config.name);
    const cluster = new Cluster(config, this.stats, this.secrets, issues, this.runtime);
    this.clusters.set(config.name, cluster);
    this.stopDns(config.name);
    switch (config.type) {
      case DiscoveryType.Static:
        cluster.setEndpoints(config.loadAssignment?.endpoints ?? []);
        break;
      case DiscoveryType.Eds: {
        const la = this.assignments.get(config.edsServiceName);
        if (la) {
          cluster.dropOverload = la.dropOverload;
          cluster.setEndpoints(la.endpoints, la.raw);
        } else if (old && old.config.edsServiceName === config.edsServiceName && old.initialized) {
          cluster.dropOverload = old.dropOverload;
          cluster.setEndpoints(old.endpointSpecs(), old.loadAssignment);
        }
        break;
      }
      case DiscoveryType.StrictDns:
      case DiscoveryType.LogicalDns:
        if (old && old.initialized) cluster.setEndpoints(old.endpointSpecs());
        this.startDns(cluster);
        break;
      case DiscoveryType.OriginalDst:
        cluster.initialized = true;
        break;
    }
    old?.close();
    this.onChange();
  }

  /** State of the world for EDS. */
  applyAssignments(all: ReadonlyMap<string, LoadAssignment>): void {
    this.assignments.clear();
    for (const [k, v] of all) this.assignments.set(k, v);
    for (const c of this.clusters.values()) {
      if (c.config.type !== DiscoveryType.Eds) continue;
      const la = this.assignments.get(c.config.edsServiceName);
      c.dropOverload = la?.dropOverload ?? NEVER;
      c.setEndpoints(la?.endpoints ?? [], la?.raw);
    }
    this.onChange();
  }

  /** Names of EDS service names the current clusters want (for the xDS client's subscription). */
  edsServiceNames(): string[] {
    return this.all()
      .filter((c) => c.config.type === DiscoveryType.Eds)
      .map((c) => c.config.edsServiceName);
  }

  assignmentsRaw(): LoadAssignment[] {
    return [...this.assignments.values()];
  }

  private startDns(cluster: Cluster): void {
    const resolver = new ClusterDns(
      cluster.config,
      (hosts) => {
        cluster.setEndpoints(hosts);
        this.onChange();
      },
      this.log,
    );
    this.dns.set(cluster.config.name, resolver);
    resolver.start();
  }

  private stopDns(name: string): void {
    this.dns.get(name)?.stop();
    this.dns.delete(name);
  }

  /** Every cluster has its first endpoints (EDS received, DNS resolved). */
  warm(): boolean {
    for (const c of this.clusters.values()) if (!c.initialized) return false;
    return true;
  }

  close(destroy: boolean): void {
    for (const name of [...this.dns.keys()]) this.stopDns(name);
    for (const c of this.clusters.values()) {
      if (destroy) c.destroy();
      else c.close();
    }
  }
}
