// Owns the clusters (static from the bootstrap, dynamic from CDS) and their endpoints (inline
// load_assignment, EDS, or DNS for STRICT_DNS / LOGICAL_DNS). Lookups by name on the request path
// go through a plain Map; a CDS update swaps Cluster objects and closes the replaced ones
// gracefully.
import dns from 'node:dns';
import net from 'node:net';
import type { Stats } from '../stats/stats.ts';
import type { Issues } from '../config/reader.ts';
import type { SecretStore } from '../tls/secrets.ts';
import type { Logger } from '../../core/log.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';
import { Cluster } from './cluster.ts';
import { NEVER } from '../config/fractional-percent.ts';
import { DiscoveryType, type ClusterConfig, type EndpointSpec, type LoadAssignment } from './cluster-config.ts';

export class ClusterManager {
  private readonly clusters = new Map<string, Cluster>();
  private readonly staticNames = new Set<string>();
  private readonly assignments = new Map<string, LoadAssignment>();
  private readonly dnsTimers = new Map<string, NodeJS.Timeout>();
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
    const cfg = cluster.config;
    const endpoints = cfg.loadAssignment?.endpoints ?? [];
    const resolveAll = async () => {
      const out: EndpointSpec[] = [];
      let failed = false;
      for (const e of endpoints) {
        if (net.isIP(e.address)) {
          out.push(e);
          continue;
        }
        try {
          const addrs = await dns.promises.lookup(e.address, { all: true, family: cfg.dnsFamily });
          const use = cfg.type === DiscoveryType.LogicalDns ? addrs.slice(0, 1) : addrs;
          for (const a of use) out.push({ ...e, address: a.address, hostname: e.hostname ?? e.address });
        } catch (err) {
          failed = true;
          this.log.warn({ cluster: cfg.name, host: e.address, err: (err as Error).message }, 'DNS resolution failed');
        }
      }
      if (this.clusters.get(cfg.name) !== cluster) return;
      // Keep the last good hosts when resolution fails.
      if (!failed || out.length) cluster.setEndpoints(out);
      else if (!cluster.initialized) cluster.setEndpoints([]);
      this.onChange();
      this.dnsTimers.set(cfg.name, setTimeout(() => void resolveAll(), cfg.dnsRefreshMs).unref());
    };
    void resolveAll();
  }

  private stopDns(name: string): void {
    const t = this.dnsTimers.get(name);
    if (t) clearTimeout(t);
    this.dnsTimers.delete(name);
  }

  /** Every cluster has its first endpoints (EDS received, DNS resolved). */
  warm(): boolean {
    for (const c of this.clusters.values()) if (!c.initialized) return false;
    return true;
  }

  close(destroy: boolean): void {
    for (const name of this.dnsTimers.keys()) this.stopDns(name);
    for (const c of this.clusters.values()) {
      if (destroy) c.destroy();
      else c.close();
    }
  }
}
