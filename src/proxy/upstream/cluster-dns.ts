// The names of a STRICT_DNS / LOGICAL_DNS cluster, resolved as Envoy's DNS cluster resolves them:
// each endpoint of its load_assignment is a target with its own refresh timer (dns-refresh.ts says
// when), a failed resolution keeps the target's last hosts, and the cluster gets its hosts once
// every target has been tried. Names resolve as the system does (getaddrinfo: /etc/hosts,
// resolv.conf's servers and search list); with respect_dns_ttl the answer, with its records'
// TTLs, comes from resolv.conf's servers, and a name they do not answer (a hosts-file entry, a short
// name the search list completes) falls back to getaddrinfo, without a TTL (the refresh rate then).
import dns from 'node:dns';
import net from 'node:net';
import type { Logger } from '../../core/log.ts';
import { DiscoveryType, type ClusterConfig, type EndpointSpec } from './cluster-config.ts';
import { refreshAfterAnswerMs, refreshAfterFailureMs } from './dns-refresh.ts';

interface DnsRecord {
  address: string;
  /** Seconds; 0 when the answer carries none. */
  ttl: number;
}

interface Target {
  readonly spec: EndpointSpec;
  /** Undefined until its first resolution ends. */
  hosts?: EndpointSpec[];
  timer?: NodeJS.Timeout;
}

/**
 * The name's A / AAAA records with their TTLs from resolv.conf's servers; [] when they give none
 * (unknown name, or unreachable: the system lookup, which may know it from /etc/hosts, decides then).
 */
async function resolveWithTtl(name: string, family: 4 | 6 | 0): Promise<DnsRecord[]> {
  const ask = (f: 4 | 6) => (f === 4 ? dns.promises.resolve4(name, { ttl: true }) : dns.promises.resolve6(name, { ttl: true })).catch(() => []);
  // AUTO asks for both, IPv6 first, as Envoy prefers it.
  return (await Promise.all(family === 0 ? [ask(6), ask(4)] : [ask(family)])).flat();
}

async function resolveName(name: string, family: 4 | 6 | 0, withTtl: boolean): Promise<DnsRecord[]> {
  if (withTtl) {
    const records = await resolveWithTtl(name, family);
    if (records.length) return records;
  }
  const addrs = await dns.promises.lookup(name, { all: true, family });
  return addrs.map((a) => ({ address: a.address, ttl: 0 }));
}

export class ClusterDns {
  private readonly cfg: ClusterConfig;
  private readonly onHosts: (hosts: EndpointSpec[]) => void;
  private readonly log: Logger;
  private readonly targets: Target[];
  /** Failed resolutions in a row, across the cluster's targets (Envoy's backoff is the cluster's). */
  private failures = 0;
  private stopped = false;

  constructor(cfg: ClusterConfig, onHosts: (hosts: EndpointSpec[]) => void, log: Logger) {
    this.cfg = cfg;
    this.onHosts = onHosts;
    this.log = log;
    this.targets = (cfg.loadAssignment?.endpoints ?? []).map((spec) => ({ spec }));
  }

  start(): void {
    if (!this.targets.length) this.onHosts([]);
    for (const t of this.targets) void this.resolve(t);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets) clearTimeout(t.timer);
  }

  private async resolve(t: Target): Promise<void> {
    const { spec } = t;
    if (net.isIP(spec.address)) {
      t.hosts = [spec];
      this.publish();
      return;
    }
    let delayMs: number;
    try {
      const records = await resolveName(spec.address, this.cfg.dnsFamily, this.cfg.dnsRefresh.respectTtl);
      // A LOGICAL_DNS cluster connects to the first address, and refreshes by its TTL.
      const used = this.cfg.type === DiscoveryType.LogicalDns ? records.slice(0, 1) : records;
      t.hosts = used.map((r) => ({ ...spec, address: r.address, hostname: spec.hostname ?? spec.address }));
      this.failures = 0;
      delayMs = refreshAfterAnswerMs(this.cfg.dnsRefresh, Math.min(...used.map((r) => r.ttl)));
    } catch (err) {
      if (this.stopped) return;
      this.log.warn({ cluster: this.cfg.name, host: spec.address, err: (err as Error).message }, 'DNS resolution failed');
      t.hosts ??= [];
      delayMs = refreshAfterFailureMs(this.cfg.dnsRefresh, ++this.failures);
    }
    if (this.stopped) return;
    this.publish();
    t.timer = setTimeout(() => void this.resolve(t), delayMs).unref();
  }

  /** Every target's hosts, once each has been tried. */
  private publish(): void {
    const hosts: EndpointSpec[] = [];
    for (const t of this.targets) {
      if (!t.hosts) return;
      hosts.push(...t.hosts);
    }
    this.onHosts(hosts);
  }
}
