/**
 * ProxyRuntime: the data plane's config sink and lifecycle.
 *
 *   const rt = new ProxyRuntime({ node, log });
 *   rt.addStatic({ listeners, clusters, secrets })   // bootstrap static_resources → errors[]
 *   rt.apply(typeUrl, resources, version?)           // xDS state of the world for one type → errors[]
 *                                                    //   ([] = ACK; otherwise NACK, previous config kept)
 *   rt.refused(typeUrl)                              // an update the xDS client refused itself (ends the same waits)
 *   rt.routeNamesInUse()                             // RDS names of the listener versions serving, warming or draining
 *   await rt.settled()                               // listeners bound
 *   rt.isReady()                                     // first config applied, listeners bound, clusters warm
 *   rt.observers.push((info, req, res) => ...)       // stream-end observers (metrics, access logs)
 *   await rt.drain(ms); rt.stop()                    // SIGTERM: stop accepting, finish in-flight, close
 *
 * apply() accepts LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE, SECRET_TYPE, RUNTIME_TYPE (RTDS) and
 * EXTENSION_CONFIG_TYPE (ECDS, src/proxy/filters/extension-config.ts)
 * (src/envoy/type-urls.ts). Each resource is checked against its proto (unknown fields, types),
 * then compiled into immutable internal config (route tables, matchers, regexes, header ops,
 * filter configs); fields we read but do not implement are logged as warnings naming them.
 * `resources` is the complete current set of that type (name → Envoy JSON); the xDS client
 * keeps its own cache for RDS/EDS and passes the whole set each time.
 */
import { randomUUID } from 'node:crypto';
import type net from 'node:net';
import { checkMessage, CLUSTER_TYPE, ENDPOINT_TYPE, EXTENSION_CONFIG_TYPE, LISTENER_TYPE, NDS_TYPE, ROUTE_TYPE, RUNTIME_TYPE, SECRET_TYPE, type EnvoyJson } from '../envoy/index.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { Issues } from './config/reader.ts';
import { Stats } from './stats/stats.ts';
import { SecretStore, compileSecret, type Secret } from './tls/secrets.ts';
import { ClusterManager } from './upstream/cluster-manager.ts';
import { compileCluster, compileLoadAssignment, type ClusterConfig, type LoadAssignment } from './upstream/cluster-config.ts';
import { ListenerManager } from './listener/listener-manager.ts';
import { compileListener, type ListenerConfig } from './listener/listener-config.ts';
import { compileRouteConfig, type RouteTable } from './routing/route-config.ts';
import type { NodeInfo, ProxyContext, StreamObserver } from './context.ts';
import { RdsRouteHolder } from './routing/rds-route-holder.ts';
import { ecdsNamesOf, rdsNamesOf } from './xds-client/xds-dependencies.ts';
import { ExtensionConfigSubscription, type ExtensionKind } from './filters/extension-config.ts';
import { setupExtensions } from './extensions.ts';
import { getOriginalDst } from './listener/original-dst.ts';
import { attachTelemetry } from './telemetry/proxy-telemetry.ts';
import type { OverloadState } from './overload/overload-manager.ts';
import { DEFAULT_RUNTIME_LAYERS, EnvoyRuntime, type RuntimeLayerConfig } from './envoy-runtime/index.ts';

const TYPE_NAMES: Record<string, string> = {
  [LISTENER_TYPE]: 'envoy.config.listener.v3.Listener',
  [ROUTE_TYPE]: 'envoy.config.route.v3.RouteConfiguration',
  [CLUSTER_TYPE]: 'envoy.config.cluster.v3.Cluster',
  [ENDPOINT_TYPE]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  [SECRET_TYPE]: 'envoy.extensions.transport_sockets.tls.v3.Secret',
};

const KIND: Record<string, string> = { [LISTENER_TYPE]: 'listener', [ROUTE_TYPE]: 'route configuration', [CLUSTER_TYPE]: 'cluster', [ENDPOINT_TYPE]: 'cluster load assignment', [SECRET_TYPE]: 'secret' };

export interface DumpEntry {
  raw: EnvoyJson;
  version: string;
  lastUpdated: string;
}

export interface ProxyRuntimeOptions {
  node: NodeInfo;
  log?: Logger;
  /** The bootstrap's layered_runtime (Envoy's default layers when absent). */
  runtimeLayers?: readonly RuntimeLayerConfig[];
}

export interface StaticResources {
  listeners?: EnvoyJson[];
  clusters?: EnvoyJson[];
  secrets?: EnvoyJson[];
}

class Context implements ProxyContext {
  readonly stats = new Stats();
  readonly secrets = new SecretStore();
  readonly clusters: ClusterManager;
  readonly log: Logger;
  readonly node: NodeInfo;
  readonly observers: StreamObserver[] = [];
  readonly runtime: EnvoyRuntime;
  readonly holders = new Map<string, RdsRouteHolder>();
  draining = false;
  healthCheckFailed = false;
  overload: OverloadState | undefined;

  constructor(node: NodeInfo, log: Logger, runtimeLayers: readonly RuntimeLayerConfig[]) {
    this.node = node;
    this.log = log;
    this.runtime = new EnvoyRuntime(runtimeLayers, { stats: this.stats, serviceCluster: node.cluster, log });
    this.clusters = new ClusterManager(this.stats, this.secrets, log, this.runtime);
  }

  readonly extensionConfigs = new Map<string, ExtensionConfigSubscription>();

  extensionConfig(kind: ExtensionKind, name: string): ExtensionConfigSubscription {
    const key = `${kind}|${name}`;
    let s = this.extensionConfigs.get(key);
    if (!s) {
      s = new ExtensionConfigSubscription(kind, name, this.stats);
      this.extensionConfigs.set(key, s);
    }
    return s;
  }

  routeHolder(name: string): RdsRouteHolder {
    let h = this.holders.get(name);
    if (!h) {
      h = new RdsRouteHolder(name);
      this.holders.set(name, h);
    }
    return h;
  }

  originalDst(socket: net.Socket): { address: string; port: number } | undefined {
    return getOriginalDst(socket);
  }
}

export class ProxyRuntime {
  readonly ctx: Context;
  readonly listeners: ListenerManager;
  /** Receives Istio's NDS NameTable (its JSON shape) in REDIRECT mode; returns the errors ([] = ACK). */
  nameTableSink: ((table: EnvoyJson) => string[]) | undefined;
  readonly log: Logger;
  readonly startedAt = Date.now();
  /** Raw resources as applied, for /config_dump: static ones and dynamic ones per type. */
  readonly staticDump = { listeners: [] as DumpEntry[], clusters: [] as DumpEntry[], secrets: [] as DumpEntry[] };
  readonly dynamicDump = new Map<string, Map<string, DumpEntry>>();
  /** Each LDS listener's dump entry by its raw object: the version of one still serving while a newer one warms. */
  readonly listenerDumps = new WeakMap<EnvoyJson, DumpEntry>();
  /** The latest warnings per type (unsupported fields), for the admin and the log. */
  readonly warnings = new Map<string, string[]>();
  private staticListeners: ListenerConfig[] = [];
  private dynamicListeners: ListenerConfig[] = [];
  private readonly staticSecretNames = new Set<string>();
  private routeTables = new Map<string, RouteTable>();
  private applied = new Set<string>();
  private initialized = false;
  private wentLive = false;
  /** Dynamic types whose first response the server waits for before going LIVE (awaitFirstFetch). */
  private readonly awaitingFirstFetch = new Set<string>();
  private readonly routeNameWatchers: (() => void)[] = [];

  constructor(opts: ProxyRuntimeOptions) {
    setupExtensions();
    this.log = opts.log ?? silentLogger;
    this.ctx = new Context(opts.node, this.log, opts.runtimeLayers ?? DEFAULT_RUNTIME_LAYERS);
    this.ctx.runtime.watch();
    attachTelemetry(this.ctx);
    this.listeners = new ListenerManager(this.ctx);
    this.listeners.onVersionsChanged = () => {
      for (const changed of this.routeNameWatchers) changed();
    };
  }

  get stats(): Stats {
    return this.ctx.stats;
  }

  get observers(): StreamObserver[] {
    return this.ctx.observers;
  }

  /** Installs the bootstrap's static_resources; returns every error (nothing is applied if any). */
  addStatic(res: StaticResources): string[] {
    const errors: string[] = [];
    const warnings: string[] = [];
    const secrets: Secret[] = [];
    (res.secrets ?? []).forEach((raw, i) => {
      const s = this.compileOne(SECRET_TYPE, raw, `static_resources.secrets[${i}]`, errors, warnings, (r, p, is) => compileSecret(r, p, is));
      if (s) secrets.push(s);
    });
    for (const s of secrets) {
      this.ctx.secrets.set(s);
      this.staticSecretNames.add(s.name);
    }
    const clusters: ClusterConfig[] = [];
    (res.clusters ?? []).forEach((raw, i) => {
      const c = this.compileOne(CLUSTER_TYPE, raw, `static_resources.clusters[${i}]`, errors, warnings, compileCluster);
      if (c) clusters.push(c);
    });
    const listeners: ListenerConfig[] = [];
    (res.listeners ?? []).forEach((given, i) => {
      // Envoy names a static listener that has no name with a UUID of its own (Listener.name).
      const raw = given?.name ? given : { ...given, name: randomUUID() };
      const l = this.compileOne(LISTENER_TYPE, raw, `static_resources.listeners[${i}]`, errors, warnings, (r, p, is) => compileListener(r, p, is, this.ctx));
      if (l) listeners.push(l);
    });
    dupes(clusters.map((c) => c.name), 'cluster', errors);
    dupes(listeners.map((l) => l.name), 'listener', errors);
    if (errors.length) {
      this.logWarnings('static_resources', warnings);
      return errors;
    }
    const now = new Date().toISOString();
    for (const c of clusters) {
      // The cluster's hooks (health checks, outlier detection, circuit breakers) compile here.
      const issues = new Issues();
      this.ctx.clusters.addStatic(c, issues);
      errors.push(...issues.errors);
      warnings.push(...issues.warnings);
      this.staticDump.clusters.push({ raw: c.raw, version: '', lastUpdated: now });
    }
    this.logWarnings('static_resources', warnings);
    this.staticListeners = listeners;
    for (const l of listeners) this.staticDump.listeners.push({ raw: l.raw, version: '', lastUpdated: now });
    for (const s of secrets) this.staticDump.secrets.push({ raw: s.raw, version: '', lastUpdated: now });
    this.listeners.apply([...this.staticListeners, ...this.dynamicListeners]);
    if (listeners.length || clusters.length) this.initialized = true;
    return errors;
  }

  private compileOne<T>(typeUrl: string, raw: EnvoyJson, path: string, errors: string[], warnings: string[], compile: (raw: EnvoyJson, path: string, issues: Issues) => T): T | undefined {
    const name = String(raw?.name ?? raw?.cluster_name ?? '');
    const label = `${KIND[typeUrl]} "${name}"`;
    const schema = checkMessage(TYPE_NAMES[typeUrl], raw);
    if (schema.length) {
      for (const s of schema) errors.push(`${label}: ${[path, s.path].filter(Boolean).join('.') || '(root)'}: ${s.message}`);
      return undefined;
    }
    const issues = new Issues();
    let out: T | undefined;
    try {
      out = compile(raw, path, issues);
    } catch (e) {
      issues.error(path, `internal error while compiling: ${(e as Error).message}`);
    }
    for (const e of issues.errors) errors.push(`${label}: ${e}`);
    for (const w of issues.warnings) warnings.push(`${label}: ${w}`);
    return issues.errors.length ? undefined : out;
  }

  private logWarnings(what: string, warnings: string[]): void {
    if (warnings.length) this.log.warn({ warnings }, `${what}: ${warnings.length} unsupported field(s) ignored`);
  }

  /** xDS state of the world for one resource type. Returns the errors ([] = ACK). */
  apply(typeUrl: string, resources: ReadonlyMap<string, EnvoyJson>, version = ''): string[] {
    // A server live before this update stays so, whatever the update warms (state() latches LIVE).
    this.state();
    if (typeUrl === NDS_TYPE) return this.nameTableSink ? this.nameTableSink(resources.get('') ?? { table: {} }) : [];
    // Accepted or refused, the first response ends the wait (Envoy's init target is ready either way).
    this.awaitingFirstFetch.delete(typeUrl);
    // RTDS: the runtime's layers (src/proxy/envoy-runtime), checked and applied as one set.
    if (typeUrl === RUNTIME_TYPE) return this.ctx.runtime.applyRtds(resources);
    if (typeUrl === EXTENSION_CONFIG_TYPE) return this.applyExtensionConfigs(resources, version);
    const errors: string[] = [];
    const warnings: string[] = [];
    const kind = KIND[typeUrl];
    if (!kind) return [`unsupported resource type ${typeUrl}`];
    const compiled = new Map<string, unknown>();
    for (const [name, raw] of resources) {
      const rname = String(raw?.name ?? raw?.cluster_name ?? '');
      if (rname !== name) errors.push(`${kind} "${name}": the resource is named "${rname}"`);
      const v = this.compileOne(typeUrl, raw, '', errors, warnings, (r, p, is) => {
        switch (typeUrl) {
          case LISTENER_TYPE:
            return compileListener(r, p, is, this.ctx);
          case ROUTE_TYPE:
            return compileRouteConfig(r, p, is, this.ctx.runtime, this.ctx.stats);
          case CLUSTER_TYPE:
            return compileCluster(r, p, is);
          case ENDPOINT_TYPE:
            return compileLoadAssignment(r, p, is);
          default:
            return compileSecret(r, p, is);
        }
      });
      if (v !== undefined) compiled.set(name, v);
    }
    if (typeUrl === LISTENER_TYPE) {
      const statics = new Set(this.staticListeners.map((l) => l.name));
      for (const n of compiled.keys()) if (statics.has(n)) errors.push(`listener "${n}" is defined statically in the bootstrap and cannot be replaced by LDS`);
    }
    this.warnings.set(typeUrl, warnings);
    this.logWarnings(kind, warnings);
    if (errors.length) {
      this.refused(typeUrl);
      return errors;
    }
    switch (typeUrl) {
      case LISTENER_TYPE:
        this.dynamicListeners = [...compiled.values()] as ListenerConfig[];
        this.listeners.apply([...this.staticListeners, ...this.dynamicListeners]);
        break;
      case ROUTE_TYPE: {
        this.routeTables = compiled as Map<string, RouteTable>;
        for (const name of this.routeTables.keys()) this.ctx.routeHolder(name);
        // A listener version still serving keeps its routes while its update warms on other ones, and a draining one while it drains.
        const serving = rdsNamesOf([...this.listeners.listeners().map((l) => l.config.raw), ...this.listeners.drainingListeners().map((c) => c.raw)]);
        for (const [name, h] of this.ctx.holders) h.update(this.routeTables.get(name), serving.has(name));
        break;
      }
      case CLUSTER_TYPE: {
        const issues = new Issues();
        this.ctx.clusters.applyDynamic([...compiled.values()] as ClusterConfig[], issues);
        warnings.push(...issues.warnings);
        this.logWarnings(kind, issues.warnings);
        if (issues.errors.length) return issues.errors;
        break;
      }
      case ENDPOINT_TYPE:
        this.ctx.clusters.applyAssignments(new Map([...compiled].map(([k, v]) => [(v as LoadAssignment).clusterName || k, v as LoadAssignment])));
        break;
      case SECRET_TYPE:
        this.ctx.secrets.replace(compiled as Map<string, Secret>, this.staticSecretNames);
        break;
    }
    const now = new Date().toISOString();
    const dump = new Map<string, DumpEntry>();
    for (const [name, raw] of resources) {
      const entry = { raw, version, lastUpdated: this.dynamicDump.get(typeUrl)?.get(name)?.raw === raw ? this.dynamicDump.get(typeUrl)!.get(name)!.lastUpdated : now };
      dump.set(name, entry);
      if (typeUrl === LISTENER_TYPE) this.listenerDumps.set(raw, entry);
    }
    this.dynamicDump.set(typeUrl, dump);
    this.applied.add(typeUrl);
    if (typeUrl === LISTENER_TYPE) this.initialized = true;
    return [];
  }

  /**
   * ECDS: the extension configs received, each checked and compiled by every filter naming it; all
   * or none applied (errors: NACK, every filter keeps its config). Nothing of the listeners changes.
   */
  private applyExtensionConfigs(resources: ReadonlyMap<string, EnvoyJson>, version: string): string[] {
    const errors: string[] = [];
    const warnings: string[] = [];
    const commits: (() => void | Promise<void>)[] = [];
    for (const [name, raw] of resources) {
      const schema = checkMessage('envoy.config.core.v3.TypedExtensionConfig', raw);
      if (schema.length) {
        for (const s of schema) errors.push(`extension config "${name}": ${s.path || '(root)'}: ${s.message}`);
        continue;
      }
      for (const kind of ['http_filter', 'network_filter'] as const) {
        const sub = this.ctx.extensionConfigs.get(`${kind}|${name}`);
        if (!sub) continue;
        const r = sub.prepare(raw, version);
        errors.push(...r.errors);
        warnings.push(...r.warnings);
        if (r.commit) commits.push(r.commit);
      }
    }
    if (errors.length) {
      this.refused(EXTENSION_CONFIG_TYPE);
      return errors;
    }
    this.warnings.set(EXTENSION_CONFIG_TYPE, warnings);
    this.logWarnings('extension configs', warnings);
    const fetching = commits.map((commit) => commit()).filter((p) => p !== undefined);
    if (fetching.length) this.ackAfterFetch.set(EXTENSION_CONFIG_TYPE, Promise.all(fetching).then(() => undefined));
    // A config received before and no longer subscribed (no listener version names it) goes, as Envoy drops the subscription.
    for (const [key, s] of this.ctx.extensionConfigs) if (s.entry && !resources.has(s.name)) this.ctx.extensionConfigs.delete(key);
    return [];
  }

  /** Accepted updates whose ACK waits for what they fetch (an ECDS config's Wasm code), by type URL: taken by ackAfter. */
  private readonly ackAfterFetch = new Map<string, Promise<void>>();

  /** XdsSink.ackAfter: the last accepted update of `typeUrl` is in force once this settles (ECDS with remote Wasm code, as behind Istio's agent). */
  ackAfter(typeUrl: string): Promise<void> | undefined {
    const p = this.ackAfterFetch.get(typeUrl);
    this.ackAfterFetch.delete(typeUrl);
    return p;
  }

  /** XdsSink.extensionNamesInUse: the ECDS names of the listener versions serving, warming or draining. */
  extensionNamesInUse(): ReadonlySet<string> {
    return ecdsNamesOf(this.listenerVersionsInUse());
  }

  /** The extension configs in force, for /config_dump's EcdsConfigDump. */
  extensionConfigDump(): { name: string; raw: EnvoyJson; version: string; lastUpdated: string }[] {
    const byName = new Map<string, { name: string; raw: EnvoyJson; version: string; lastUpdated: string }>();
    for (const s of this.ctx.extensionConfigs.values()) {
      const e = s.entry;
      const had = byName.get(s.name);
      if (e && (!had || had.lastUpdated < e.lastUpdated)) byName.set(s.name, { name: s.name, ...e });
    }
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * A refused update of `typeUrl`, here or by the xDS client before it came here (XdsSink.refused):
   * as Envoy's, it ends the first fetch's wait and, for RDS, the listeners' wait for their routes
   * (they serve without them, 404 NR, until good ones come).
   */
  refused(typeUrl: string): void {
    this.awaitingFirstFetch.delete(typeUrl);
    if (typeUrl === ROUTE_TYPE) for (const h of this.ctx.holders.values()) h.refused();
    if (typeUrl === EXTENSION_CONFIG_TYPE) for (const s of this.ctx.extensionConfigs.values()) s.refused();
  }

  /** XdsSink.routeNamesInUse: the RDS route configurations of the listener versions serving, warming or draining. */
  routeNamesInUse(): ReadonlySet<string> {
    return rdsNamesOf(this.listenerVersionsInUse());
  }

  /**
   * The listener versions whose subscriptions are kept: serving, warming, and draining (out of
   * service, connections still open: Envoy keeps a draining listener's providers until it is gone).
   */
  private listenerVersionsInUse(): EnvoyJson[] {
    const l = this.listeners;
    return [...l.listeners().map((a) => a.config.raw), ...l.warmingListeners().map((c) => c.raw), ...l.drainingListeners().map((c) => c.raw)];
  }

  /** XdsSink.watchRouteNamesInUse: `changed` runs after a warmed listener version went into service or a draining one closed its last connection. */
  watchRouteNamesInUse(changed: () => void): void {
    this.routeNameWatchers.push(changed);
  }

  /**
   * Keeps the server INITIALIZING until the first `typeUrl` response from a dynamic source (the
   * bootstrap's cds_config / lds_config), as Envoy's init manager does: without it a proxy fed by
   * ADS was LIVE (and /healthz/ready 200) from its start, before any config. After `timeoutMs`
   * (initial_fetch_timeout; 0 waits for good, as Istio's bootstrap asks) it goes on without.
   */
  awaitFirstFetch(typeUrl: string, timeoutMs: number): void {
    this.awaitingFirstFetch.add(typeUrl);
    if (timeoutMs <= 0) return;
    setTimeout(() => {
      if (this.awaitingFirstFetch.delete(typeUrl)) this.log.warn({ typeUrl, timeoutMs }, 'no config of this type within initial_fetch_timeout; initializing without it');
    }, timeoutMs).unref();
  }

  /** Resolves once every listener applied so far has bound or failed. */
  settled(): Promise<void> {
    return this.listeners.settled();
  }

  /**
   * Envoy's server state: LIVE once the first config is applied, listeners bound and clusters
   * warm, and LIVE from then on, as in Envoy: a cluster or listener warming after a later update
   * does not take the server (nor its readiness) back to INITIALIZING.
   */
  state(): 'LIVE' | 'INITIALIZING' | 'DRAINING' {
    if (this.ctx.draining) return 'DRAINING';
    if (this.wentLive) return 'LIVE';
    if (!this.initialized || this.awaitingFirstFetch.size || !this.ctx.clusters.warm()) return 'INITIALIZING';
    // A listener warming (its RDS routes or remote Wasm code fetched) or waiting for its address to be freed cannot take traffic yet.
    if (this.listeners.warmingListeners().length) return 'INITIALIZING';
    for (const l of this.listeners.listeners()) if (l.state === 'pending' || l.retrying) return 'INITIALIZING';
    this.wentLive = true;
    return 'LIVE';
  }

  /** Admin POST /healthcheck/fail|ok: readiness and the health_check HTTP filters follow it. */
  get healthCheckFailed(): boolean {
    return this.ctx.healthCheckFailed;
  }

  set healthCheckFailed(v: boolean) {
    this.ctx.healthCheckFailed = v;
  }

  isReady(): boolean {
    return this.state() === 'LIVE' && !this.healthCheckFailed;
  }

  routeTable(name: string): RouteTable | undefined {
    return this.ctx.holders.get(name)?.table;
  }

  /** In-flight HTTP requests across all connection managers. */
  activeRequests(): number {
    let n = 0;
    for (const s of this.stats.liveGauges()) if (s.name.endsWith('.downstream_rq_active') || (s.name.startsWith('tcp.') && s.name.endsWith('.downstream_cx_active'))) n += s.value;
    return n;
  }

  /** Stops accepting, marks responses Connection: close / sends GOAWAY, waits for in-flight requests (up to timeoutMs). */
  async drain(timeoutMs: number): Promise<void> {
    this.ctx.draining = true;
    this.listeners.stopAccepting();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.activeRequests() > 0) await new Promise((r) => setTimeout(r, 50));
  }

  /** Closes every downstream connection, upstream pool and timer. */
  stop(): void {
    this.listeners.stopAccepting();
    this.listeners.destroyConnections();
    this.ctx.clusters.close(true);
    this.ctx.runtime.close();
  }
}

function dupes(names: string[], kind: string, errors: string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) errors.push(`${kind} "${n}" is defined more than once`);
    seen.add(n);
  }
}
