// The discovery server (Istio's pilot/pkg/xds): debounces config and registry changes, builds
// an immutable push context, and pushes to every ADS stream only what changed for it. Handles
// ACK/NACK per type, auto-registration of proxies, and keeps per-proxy status.
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { formatDiagnostic } from '../../api/index.ts';
import type { Resource } from '../../api/resource.ts';
import type { ConfigStore, DeferredReads } from '../../config/store.ts';
import type { Logger } from '../../core/log.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HEALTH_INFO_TYPE, XDS_TYPES_IN_ORDER, EnvoyJsonError } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import { warnOnce } from '../../model/config-warnings.ts';
import { GatewayNameCache, type GatewayDnsOptions } from '../../model/gateway-names.ts';
import type { MeshConfig } from '../../model/mesh-config.ts';
import type { CredentialSource } from '../../model/push-context.ts';
import { PushContext } from '../../model/push-context.ts';
import { NodeError, parseNode, type Proxy } from '../../model/proxy.ts';
import { workloadFromProxy } from '../../registry/auto-registration.ts';
import type { ServiceRegistry } from '../../registry/service-registry.ts';
import { HEALTH_CHECKS_ANNOTATION, workloadEntryKey } from '../../registry/service-registry.ts';
import { AdsConnection } from './ads-connection.ts';
import type { WatchState } from './ads-connection.ts';
import type { EncodedResponse } from './encoded-response.ts';
import { encodedResponse } from './encoded-response.ts';
import type { NameFilter } from './watched-names.ts';
import { nameFilter } from './watched-names.ts';
import { GENERATORS } from './generators.ts';
import { parseClusterName } from '../translate/names.ts';
import type { PushScope } from './push-scope.ts';
import { ALL_TYPES, endpointChanges, endpointScope, mergeScopes, routingScope } from './push-scope.ts';
import type { ControlPlaneMetrics } from './metrics.ts';
import type { PackedResource } from './resource-cache.ts';
import { pack } from './resource-cache.ts';
import { cannotControlEntry, verifiedIdentity, type XdsAuthenticator } from './xds-identity.ts';
import type { SpiffeIdentity } from '../../ca/spiffe.ts';

export interface DiscoveryServerOptions {
  store: ConfigStore;
  mesh: MeshConfig;
  registry: ServiceRegistry;
  credentials?: CredentialSource;
  log: Logger;
  metrics: ControlPlaneMetrics;
  /** Quiet period after the last change before a push (istiod's PILOT_DEBOUNCE_AFTER, default 100 ms). */
  debounceMs?: number;
  /**
   * Longest a push waits while changes keep coming (PILOT_DEBOUNCE_MAX, default 10 s). A burst of
   * proxies connecting one after another, each the first endpoint of its service (new SANs: CDS to
   * every proxy), never goes quiet and so costs one round per this time instead of one per proxy.
   */
  debounceMaxMs?: number;
  /**
   * PILOT_ENABLE_EDS_DEBOUNCE (default true): false pushes a change of endpoints at once, on its own
   * (on the configuration in force), while pending config changes keep their debounce, as does a
   * change of a service's service accounts (a full push in istiod).
   */
  edsDebounce?: boolean;
  /** How long an auto-registered workload outlives its last stream (default 5 s). */
  workloadGraceMs?: number;
  /**
   * Bytes of responses sent and not yet ACKed, across all proxies, above which further pushes
   * queue until ACKs arrive (Istio's push throttle; bounds memory when thousands of proxies
   * are slow to read). A response shared by many streams (one buffer) counts once. Default 128 MiB.
   */
  maxInflightBytes?: number;
  /**
   * Istio's ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY (default true): a proxy stands for a
   * health-checked WorkloadEntry, or registers under a WorkloadGroup, only with a verified identity
   * (an authenticated TLS stream) of the entry's namespace and service account.
   */
  validateWorkloadEntryIdentity?: boolean;
  /** How MeshNetworks gateways given by hostname are resolved (istiod's RESOLVE_HOSTNAME_GATEWAYS). */
  gatewayDns?: GatewayDnsOptions;
}

export interface DiscoveryRequestJson {
  version_info?: string;
  node?: unknown;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

type AdsCall = grpc.ServerDuplexStream<DiscoveryRequestJson, EncodedResponse>;

const CHUNK = 64;

/**
 * Config kinds whose changes can only alter listeners and routes: clusters, endpoints and secrets
 * are generated without reading them, so a push caused by them alone skips CDS, EDS and SDS (as
 * Istio skips EDS for VirtualService changes).
 */
const ROUTING_ONLY_KINDS: ReadonlySet<string> = new Set(['VirtualService', 'HTTPRoute', 'GRPCRoute']);

export class DiscoveryServer {
  readonly connections = new Map<string, AdsConnection>();
  readonly #o: Required<Omit<DiscoveryServerOptions, 'credentials' | 'gatewayDns'>> & { credentials?: CredentialSource };
  /** DNS answers for network gateways given by hostname: a changed answer is a full push, as istiod's. */
  readonly #gatewayNames: GatewayNameCache;
  #authenticator: XdsAuthenticator | undefined;
  readonly #log: Logger;
  #push: PushContext;
  #pushCounter = 0;
  #conCounter = 0;
  #firstEventAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #liveByProxy = new Map<string, number>();
  readonly #graceTimers = new Map<string, NodeJS.Timeout>();
  #unsubscribe: (() => void) | undefined;
  /** The store's reads, when it leaves their timing to this server's debounce (a watched directory). */
  #deferred: DeferredReads | undefined;
  /** The store announced changes it has not read yet (read when the debounce ends). */
  #unread = false;
  #reading = false;
  #stopped = false;
  /** The last push written to every stream; `types`: the xDS types it regenerated (`eds`…), `edsHosts`: how many hosts' EDS (all when absent). */
  #lastPush: { version: string; at: string; reason: string; durationMs: number; proxies: number; types: string[]; edsHosts?: number } | undefined;
  #pushReasons = new Set<string>();
  /** What the changes since the last push may affect. */
  #pending = { all: false, routing: false, endpoints: false };
  /** EDS debounce off: the endpoint push due at once (its reasons, when the first change came). */
  #edsDue: { timer: NodeJS.Timeout; reasons: Set<string>; since: number } | undefined;
  /** EDS debounce off: hosts whose endpoint change istiod pushes in full (CDS too), waiting for the debounced push. */
  #fullEndpointHosts = new Set<string>();
  /** Scope of the push still being written (a newer push that takes over must cover it too). */
  #writing: PushScope | undefined;
  /** Connections of the push being written, in order, and how many it reached. */
  #writingOrder: { cons: AdsConnection[]; reached: number } | undefined;
  #inflightBytes = 0;
  /** Responses sent and not yet answered → how many streams hold each (a shared response counts once against the budget). */
  readonly #inflight = new Map<EncodedResponse, number>();
  /** Pushes waiting for in-flight budget, by `connection id|type URL` (force wins). */
  readonly #throttled = new Map<string, { con: AdsConnection; typeUrl: string; force: boolean; only: Set<string> | undefined }>();

  constructor(opts: DiscoveryServerOptions) {
    this.#o = { ...opts, debounceMs: opts.debounceMs ?? 100, debounceMaxMs: opts.debounceMaxMs ?? 10_000, edsDebounce: opts.edsDebounce ?? true, workloadGraceMs: opts.workloadGraceMs ?? 5000, maxInflightBytes: opts.maxInflightBytes ?? 128 << 20, validateWorkloadEntryIdentity: opts.validateWorkloadEntryIdentity ?? true };
    this.#log = opts.log;
    this.#gatewayNames = new GatewayNameCache(() => this.requestPush('networks'), opts.gatewayDns);
    this.#push = this.#build(opts.store.list());
  }

  get push(): PushContext {
    return this.#push;
  }

  get lastPush() {
    return this.#lastPush;
  }

  start(): void {
    this.#unsubscribe = this.#o.store.onChange((events) => {
      for (const e of events) this.#o.metrics.configEvents.inc({ type: e.resource.kind, event: e.type });
      this.requestPush('config', events.every((e) => ROUTING_ONLY_KINDS.has(e.resource.kind)) ? 'routing' : 'all');
    });
    this.#deferred = this.#o.store.deferReads?.(() => {
      if (!this.#unread) this.#log.debug('configuration changed; read when the push debounce ends');
      this.#unread = true;
      this.#debounce();
    });
    this.#push = this.#build(this.#o.store.list());
  }

  stop(): void {
    this.#stopped = true;
    this.#gatewayNames.close();
    this.#unsubscribe?.();
    this.#deferred?.release();
    clearTimeout(this.#timer);
    clearTimeout(this.#edsDue?.timer);
    for (const t of this.#graceTimers.values()) clearTimeout(t);
    this.#graceTimers.clear();
  }

  /**
   * Schedules a debounced push (config or registry change). `routing`: only listeners and routes
   * can have changed; `endpoints`: only the registry's endpoints (the push covers what they feed).
   */
  requestPush(reason: string, scope: 'all' | 'routing' | 'endpoints' = 'all'): void {
    this.#o.metrics.pushTriggers.inc({ type: reason });
    if (scope === 'endpoints' && !this.#o.edsDebounce) {
      // istiod pushes each EDS update at once; changes of the same turn go together here.
      this.#edsDue ??= { timer: setTimeout(() => this.#pushEndpoints(), 0), reasons: new Set(), since: Date.now() };
      this.#edsDue.reasons.add(reason);
      return;
    }
    this.#pushReasons.add(reason);
    this.#pending[scope] = true;
    this.#debounce();
  }

  /**
   * istiod's debounce: the push starts once no change came for debounceMs, or debounceMaxMs after
   * the first change, whichever is first.
   */
  #debounce(): void {
    const now = Date.now();
    this.#firstEventAt ??= now;
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#o.debounceMs, this.#firstEventAt + this.#o.debounceMaxMs - now));
    this.#timer = setTimeout(() => void this.#debounced(), wait);
  }

  /** The debounce ended: reads what the store announced (its events join the pending changes), then pushes. */
  async #debounced(): Promise<void> {
    if (this.#reading) return; // the read in progress pushes when it ends
    if (this.#unread && this.#deferred) {
      this.#unread = false;
      this.#reading = true;
      try {
        await this.#deferred.read();
      } catch (err) {
        this.#log.error({ err }, 'reading the changed configuration failed; pushing what was read');
      } finally {
        this.#reading = false;
      }
      if (this.#stopped) return;
      // Written again while being read: wait for quiet again (the first change's deadline still holds).
      if (this.#unread) return this.#debounce();
      clearTimeout(this.#timer);
    }
    if (!this.#pending.all && !this.#pending.routing && !this.#pending.endpoints) {
      this.#firstEventAt = undefined; // nothing read changed the configuration
      return;
    }
    this.#flush();
  }

  #build(resources: readonly Resource[]): PushContext {
    const t0 = performance.now();
    const registry = this.#o.registry.snapshot(resources);
    const version = `${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}/${++this.#pushCounter}`;
    const push = new PushContext({ version, mesh: this.#o.mesh, resources, registry, credentials: this.#o.credentials, gatewayNames: this.#gatewayNames });
    // What Istio would write into Gateway API status (Accepted/ResolvedRefs=False): there is no API server here, so it is logged.
    for (const d of push.gatewayApiDiagnostics) warnOnce('gateway-api', formatDiagnostic(d));
    const m = this.#o.metrics;
    m.pushContextInit.observe((performance.now() - t0) / 1000);
    m.services.set(push.services.length);
    m.virtualServices.set(push.virtualServices.length);
    m.destinationRuleSubsets.set(push.destinationRules.reduce((n, dr) => n + (dr.spec.subsets?.length ?? 0), 0));
    let eps = 0;
    for (const ports of push.endpoints.values()) for (const list of ports.values()) eps += list.length;
    m.endpoints.set(eps);
    return push;
  }

  /** The debounced push: the store's configuration and the registry's endpoints. */
  #flush(): void {
    const triggeredAt = this.#firstEventAt ?? Date.now();
    this.#firstEventAt = undefined;
    const pending = this.#pending;
    this.#pending = { all: false, routing: false, endpoints: false };
    // An endpoint push still due is built into this one (it reads the registry too): this one covers it.
    const eds = this.#edsDue;
    if (eds) {
      clearTimeout(eds.timer);
      this.#edsDue = undefined;
      for (const r of eds.reasons) this.#pushReasons.add(r);
      pending.endpoints = true;
    }
    const reasons = [...this.#pushReasons].join(',');
    this.#pushReasons.clear();
    const push = this.#tryBuild(this.#o.store.list());
    if (!push) {
      this.#pending = pending; // the next push still covers every pending change
      return;
    }
    let scope: PushScope = pending.all ? ALL_TYPES : pending.routing ? routingScope(this.#push, push) : { types: [] };
    if (!pending.all && pending.endpoints) scope = mergeScopes(scope, endpointScope(this.#push, push));
    // Some may already be in force, put there by an endpoint push of other hosts that left their CDS to this one.
    if (!pending.all && this.#fullEndpointHosts.size) scope = mergeScopes(scope, { types: [CLUSTER_TYPE, ENDPOINT_TYPE], edsHosts: this.#fullEndpointHosts });
    this.#fullEndpointHosts = new Set();
    this.#write(push, scope, reasons, triggeredAt);
  }

  /**
   * EDS debounce off (istiod's incremental EDS push): endpoint changes go at once, built on the
   * configuration in force, not on the changes still debounced; their push, later, starts from this one.
   * A change istiod pushes in full is debounced even so (its debounce skips only non-full pushes): a
   * changed set of service accounts (the SANs clients verify, in CDS) or changed services. It joins
   * the debounced push; the other hosts' endpoints changed in the same turn still go at once.
   */
  #pushEndpoints(): void {
    const due = this.#edsDue;
    if (!due) return;
    this.#edsDue = undefined;
    const push = this.#tryBuild(this.#push.resources);
    if (!push) {
      for (const r of due.reasons) this.#pushReasons.add(r);
      this.#pending.endpoints = true; // the next push still covers them
      return;
    }
    const reasons = [...due.reasons].join(',');
    const changes = endpointChanges(this.#push, push);
    if (!changes.services && !changes.clusterHosts.size) return this.#write(push, edsOf(changes.hosts), reasons, due.since);
    // istiod's full push: only a change not already waiting starts or extends the quiet period.
    const fresh = changes.services ? !this.#pending.all : [...changes.clusterHosts].some((h) => !this.#fullEndpointHosts.has(h));
    for (const r of due.reasons) this.#pushReasons.add(r);
    this.#pending.endpoints = true;
    if (changes.services) this.#pending.all = true; // covered whole, even once an endpoint push has put it in force
    for (const h of changes.clusterHosts) this.#fullEndpointHosts.add(h);
    if (fresh) this.#debounce();
    const incremental = new Set([...changes.hosts].filter((h) => !changes.clusterHosts.has(h)));
    if (!changes.services && incremental.size) this.#write(push, edsOf(incremental), reasons, due.since);
  }

  /** The push context of `resources` and the registry; undefined (logged) when it fails: the last good snapshot stays in force. */
  #tryBuild(resources: readonly Resource[]): PushContext | undefined {
    try {
      return this.#build(resources);
    } catch (err) {
      this.#o.metrics.internalErrors.inc();
      this.#log.error({ err }, 'building the push context failed; keeping the previous configuration');
      return undefined;
    }
  }

  /** Puts `push` in force and writes `scope` of it to every stream, in chunks (a newer push may take over). */
  #write(push: PushContext, scope: PushScope, reasons: string, triggeredAt: number): void {
    scope = mergeScopes(this.#writing, scope);
    this.#push = push;
    this.#writing = scope;
    const edsWanted = scope.edsHosts && clusterOfHosts(scope.edsHosts);
    const t0 = performance.now();
    const cons = this.#pushOrder();
    for (const c of cons) c.pendingSince ??= triggeredAt;
    const order = { cons, reached: 0 };
    this.#writingOrder = order;
    const step = () => {
      if (this.#push !== push) return; // a newer snapshot took over; it pushes to everyone
      const end = Math.min(cons.length, order.reached + CHUNK);
      for (; order.reached < end; order.reached++) {
        const c = cons[order.reached];
        if (!c.closed) this.#pushConnection(c, push, false, scope.types, edsWanted);
      }
      if (order.reached < cons.length) setImmediate(step);
      else {
        this.#writing = undefined;
        this.#writingOrder = undefined;
        const types = scope.types.map((t) => GENERATORS[t].short);
        this.#lastPush = { version: push.version, at: new Date().toISOString(), reason: reasons, durationMs: Math.round(performance.now() - t0), proxies: cons.length, types, edsHosts: scope.edsHosts?.size };
        this.#log.debug({ version: push.version, proxies: cons.length, reasons }, 'push complete');
      }
    };
    step();
  }

  /**
   * Every connection, those a push that is being taken over did not reach first: under a steady
   * stream of changes (thousands of proxies connecting) each push still reaches every proxy once
   * per round instead of restarting at the first ones.
   */
  #pushOrder(): AdsConnection[] {
    const all = [...this.connections.values()];
    const prev = this.#writingOrder;
    if (!prev) return all;
    const reached = new Set(prev.cons.slice(0, prev.reached));
    return [...all.filter((c) => !reached.has(c)), ...all.filter((c) => reached.has(c))];
  }

  #pushConnection(con: AdsConnection, push: PushContext, force: boolean, types: readonly string[] = XDS_TYPES_IN_ORDER, edsWanted?: NameFilter): void {
    if (con.blocked) return;
    for (const typeUrl of types) if (con.watches.has(typeUrl)) this.#pushType(con, typeUrl, push, force, typeUrl === ENDPOINT_TYPE ? edsWanted : undefined);
    con.pendingSince = undefined;
  }

  #pack(typeUrl: string, con: AdsConnection, w: WatchState, generated: EnvoyJson[]): PackedResource[] {
    const out: PackedResource[] = [];
    for (const r of generated) {
      try {
        out.push(pack(typeUrl, r));
      } catch (err) {
        this.#o.metrics.internalErrors.inc();
        const name = (r.name ?? r.cluster_name) as string;
        this.#log.error({ proxy: con.proxy.id, type: typeUrl, resource: name, err: err instanceof EnvoyJsonError ? err.message : String(err) }, 'generated resource does not fit its Envoy type; keeping the previous one');
        const prev = w.full ? w.full.find((r) => r.name === name) : w.sent.get(name);
        if (prev) out.push(prev as PackedResource);
      }
    }
    return out;
  }

  /** `wanted`: only these of the watched names can have changed (EDS); the others are not regenerated. */
  #pushType(con: AdsConnection, typeUrl: string, push: PushContext, force: boolean, wanted?: NameFilter): void {
    const gen = GENERATORS[typeUrl];
    const w = con.watches.get(typeUrl);
    if (!gen || !w) return;
    // Flow control (as go-control-plane's state of the world): one response per type in flight;
    // a proxy that is slow to ACK, or never does, gets the latest state once it answers.
    if (w.awaiting && !force) {
      w.pendingNames = w.pending ? heldNames(w.pendingNames, w.names, wanted) : heldNames(new Set(), w.names, wanted);
      w.pending = true;
      return;
    }
    if (this.#inflightBytes >= this.#o.maxInflightBytes) {
      const key = `${con.id}|${typeUrl}`;
      const held = this.#throttled.get(key);
      const only = force ? undefined : heldNames(held ? held.only : new Set(), w.names, wanted);
      this.#throttled.set(key, { con, typeUrl, force: force || (held?.force ?? false), only });
      return;
    }
    const t0 = performance.now();
    let generated: EnvoyJson[];
    try {
      generated = gen.generate(push, con.proxy, wanted && w.names ? wanted.list(w.names) : w.names);
    } catch (err) {
      this.#o.metrics.internalErrors.inc();
      this.#log.error({ proxy: con.proxy.id, type: gen.short, err }, 'generating resources failed');
      return;
    }
    const packed = this.#pack(typeUrl, con, w, generated);
    let toSend: PackedResource[];
    if (gen.fullState) {
      const prev = w.full;
      if (!force && prev && prev.length === packed.length && prev.every((r, i) => r.hash === packed[i].hash)) return;
      toSend = packed;
      const eds = typeUrl === CLUSTER_TYPE ? con.watches.get(ENDPOINT_TYPE) : undefined;
      if (eds) {
        // Envoy re-warms a changed cluster: it needs its endpoints again.
        const before = new Map(prev?.map((r) => [r.name, r.hash]));
        for (const p of packed) if (before.get(p.name) !== p.hash) eds.sent.delete(p.name);
      }
      w.full = packed;
    } else {
      toSend = force ? packed : packed.filter((p) => w.sent.get(p.name)?.hash !== p.hash);
      if (!toSend.length && !force) return;
      for (const p of toSend) w.sent.set(p.name, p);
    }
    const res = encodedResponse(push.version, typeUrl, toSend);
    const ok = con.send(res);
    const bytes = res.frame.length;
    this.#release(w);
    // The budget bounds the memory of responses not yet answered: a response shared by many streams counts once.
    w.inflight = res;
    const holders = this.#inflight.get(res) ?? 0;
    this.#inflight.set(res, holders + 1);
    if (holders === 0) this.#inflightBytes += bytes;
    w.nonceSent = res.nonce;
    w.awaiting = true;
    w.pending = false;
    w.pendingNames = undefined;
    w.versionSent = push.version;
    w.sentAt = new Date().toISOString();
    w.pushes++;
    const m = this.#o.metrics;
    m.pushes.inc({ type: gen.short });
    m.pushTime.observe({ type: gen.short }, (performance.now() - t0) / 1000);
    m.configSize.observe({ type: gen.short }, bytes);
    if (con.pendingSince !== undefined) m.convergence.observe((Date.now() - con.pendingSince) / 1000);
    if (!ok) con.blocked = true;
  }

  #release(w: WatchState): void {
    const res = w.inflight;
    if (!res) return;
    w.inflight = undefined;
    const holders = (this.#inflight.get(res) ?? 1) - 1;
    if (holders > 0) this.#inflight.set(res, holders);
    else {
      this.#inflight.delete(res);
      this.#inflightBytes -= res.frame.length;
    }
  }

  #drainThrottled(): void {
    for (const [key, item] of this.#throttled) {
      if (this.#inflightBytes >= this.#o.maxInflightBytes) return;
      this.#throttled.delete(key);
      if (!item.con.closed) this.#pushType(item.con, item.typeUrl, this.#push, item.force, namesIn(item.only));
    }
  }

  /** Authenticates ADS streams over TLS (the CA's authenticators: set when the CA is attached). */
  setAuthenticator(authenticate: XdsAuthenticator): void {
    this.#authenticator = authenticate;
  }

  /** Serves one ADS stream. */
  handleStream(call: AdsCall): void {
    let con: AdsConnection | undefined;
    const peer = call.getPeer();
    let refused = false;
    const fail = (code: grpc.status, details: string) => {
      refused = true;
      this.#log.warn({ peer, details }, 'rejecting ADS stream');
      call.emit('error', { code, details });
    };
    let identities: string[] | undefined;
    const handle = (req: DiscoveryRequestJson) => {
      try {
        if (!con) {
          let proxy;
          try {
            proxy = parseNode(req.node);
          } catch (err) {
            if (err instanceof NodeError) return fail(grpc.status.INVALID_ARGUMENT, err.message);
            throw err;
          }
          const admitted = this.#admit(proxy, identities);
          if ('refuse' in admitted) return fail(admitted.refuse, admitted.details);
          con = new AdsConnection(`${proxy.id}-${++this.#conCounter}`, proxy, peer, (msg) => call.write(msg));
          con.identity = admitted.identity;
          con.healthEntry = admitted.healthEntry;
          const c = con;
          call.on('drain', () => {
            c.blocked = false;
            if (!c.closed) this.#pushConnection(c, this.#push, false);
          });
          this.#connect(con);
        }
        this.#onRequest(con, req);
      } catch (err) {
        this.#o.metrics.internalErrors.inc();
        this.#log.error({ err, peer }, 'internal error handling a DiscoveryRequest');
      }
    };
    // Requests wait, in order, for the stream's authentication (Istio authenticates before the first request).
    let waiting: DiscoveryRequestJson[] | undefined;
    if (this.#authenticator) {
      waiting = [];
      this.#authenticator(call.metadata, call.getAuthContext().sslPeerCertificate).then(
        (ids) => {
          identities = ids;
          const queued = waiting ?? [];
          waiting = undefined;
          for (const req of queued) if (!refused) handle(req);
        },
        (err: unknown) => {
          waiting = undefined;
          fail(grpc.status.UNAUTHENTICATED, `authentication failure: ${(err as Error).message}`);
        },
      );
    }
    call.on('data', (req: DiscoveryRequestJson) => {
      if (waiting) waiting.push(req);
      else if (!refused) handle(req);
    });
    const close = () => {
      if (con && !con.closed) this.#disconnect(con);
    };
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('error', close);
    call.on('close', close);
    call.on('cancelled', close);
  }

  #connect(con: AdsConnection): void {
    this.connections.set(con.id, con);
    this.#o.metrics.xdsConnected.inc({ version: con.proxy.istioVersion || 'unknown' });
    this.#log.info({ proxy: con.proxy.id, peer: con.peer, type: con.proxy.type }, 'proxy connected');
    const w = workloadFromProxy(con.proxy);
    if (!w && !con.proxy.workloadEntry) return;
    const key = con.proxy.id;
    this.#liveByProxy.set(key, (this.#liveByProxy.get(key) ?? 0) + 1);
    const t = this.#graceTimers.get(key);
    if (t) {
      clearTimeout(t);
      this.#graceTimers.delete(key);
    }
    if (!w) return;
    if (w.group && this.#o.validateWorkloadEntryIdentity) w.provenServiceAccount = con.identity?.serviceAccount;
    const before = this.#o.registry.version;
    this.#o.registry.upsertWorkload(w);
    if (this.#o.registry.version !== before) this.requestPush('endpoint', 'endpoints');
  }

  #disconnect(con: AdsConnection): void {
    con.closed = true;
    for (const w of con.watches.values()) this.#release(w);
    for (const key of this.#throttled.keys()) if (key.startsWith(`${con.id}|`)) this.#throttled.delete(key);
    this.#drainThrottled();
    this.connections.delete(con.id);
    this.#o.metrics.xdsConnected.dec({ version: con.proxy.istioVersion || 'unknown' });
    this.#log.info({ proxy: con.proxy.id }, 'proxy disconnected');
    const key = con.proxy.id;
    const live = (this.#liveByProxy.get(key) ?? 0) - 1;
    if (live > 0) {
      this.#liveByProxy.set(key, live);
      return;
    }
    this.#liveByProxy.delete(key);
    // The WorkloadEntry a proxy controlled loses its reported health with it (Istio deletes its Healthy condition).
    const entry = con.healthEntry;
    if (!this.#o.registry.hasWorkload(key) && !entry) return;
    const timer = setTimeout(() => {
      this.#graceTimers.delete(key);
      if (this.#liveByProxy.has(key)) return;
      const removed = this.#o.registry.removeWorkload(key);
      if ((entry && this.#o.registry.clearHealth(entry)) || removed) this.requestPush('endpoint', 'endpoints');
    }, this.#o.workloadGraceMs);
    timer.unref();
    this.#graceTimers.set(key, timer);
  }

  /** The last health report on a live stream of the proxy with this node id (undefined: none yet, or not connected). */
  workloadHealth(proxyId: string): { healthy: boolean; message: string } | undefined {
    for (const c of this.connections.values()) if (c.proxy.id === proxyId && !c.closed && c.health) return c.health;
    return undefined;
  }

  /**
   * Removes the auto-registered workload of the proxy with this node id, and its reported health,
   * at once instead of a grace period after its last stream: its runtime is stopping it or saw it
   * exit (`rig up`, as Kubernetes takes a terminating pod out of its Service's endpoints).
   */
  forgetWorkload(proxyId: string): void {
    clearTimeout(this.#graceTimers.get(proxyId));
    this.#graceTimers.delete(proxyId);
    if (this.#o.registry.removeWorkload(proxyId)) this.requestPush('endpoint', 'endpoints');
  }

  /**
   * Istio's workload health report (`istio.io/health`): no error_detail means healthy. It sets the
   * health of the proxy's auto-registered workload, or of the WorkloadEntry it stands for; an
   * unhealthy one leaves EDS (Istio's default, PILOT_SEND_UNHEALTHY_ENDPOINTS off).
   */
  #onHealth(con: AdsConnection, req: DiscoveryRequestJson): void {
    const healthy = !req.error_detail;
    const message = req.error_detail?.message ?? '';
    const target = this.#healthTarget(con);
    if (!target) return;
    con.health = { healthy, message, at: new Date().toISOString() };
    if (!this.#o.registry.setHealth(target.key, healthy)) return;
    this.#log.info({ proxy: con.proxy.id, workload: target.name, healthy, ...(healthy ? {} : { reason: message }) }, 'workload health changed');
    this.requestPush('endpoint', 'endpoints');
  }

  /**
   * Whether a proxy may open its stream, and the WorkloadEntry whose health it then controls
   * (istiod's authorize and WorkloadEntry controller OnConnect): an authenticated proxy must claim
   * the identity it proved; a proxy standing for a WorkloadEntry needs that entry to exist and, when
   * it is health-checked, to own it; one registering under a WorkloadGroup must own the entry the
   * group makes. Ownership needs a verified identity of the entry's namespace and service account
   * (ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY). Istio refuses the connection otherwise.
   */
  #admit(proxy: Proxy, identities: string[] | undefined): { refuse: grpc.status; details: string } | { identity?: SpiffeIdentity; healthEntry?: string } {
    let identity: SpiffeIdentity | undefined;
    if (identities) {
      const v = verifiedIdentity(proxy, identities);
      if (typeof v === 'string') return { refuse: grpc.status.PERMISSION_DENIED, details: `authorization failed: ${v}` };
      identity = v;
    }
    const validate = this.#o.validateWorkloadEntryIdentity;
    if (proxy.workloadGroup) {
      const group = this.#o.store.get('WorkloadGroup', proxy.namespace, proxy.workloadGroup);
      const templateSa = (group?.spec as { template?: { serviceAccount?: string } } | undefined)?.template?.serviceAccount;
      const sa = templateSa || (typeof proxy.metadata.SERVICE_ACCOUNT === 'string' ? proxy.metadata.SERVICE_ACCOUNT : undefined);
      const why = validate ? cannotControlEntry(identity, `the WorkloadEntry of WorkloadGroup ${proxy.namespace}/${proxy.workloadGroup}`, proxy.namespace, sa) : undefined;
      return why ? { refuse: grpc.status.PERMISSION_DENIED, details: why } : { identity };
    }
    if (!proxy.workloadEntry) return { identity };
    const entry = this.#o.store.get('WorkloadEntry', proxy.namespace, proxy.workloadEntry);
    const name = `WorkloadEntry ${proxy.namespace}/${proxy.workloadEntry}`;
    if (!entry) return { refuse: grpc.status.FAILED_PRECONDITION, details: `node metadata WORKLOAD_ENTRY names ${name}, which does not exist: create it first (the proxy retries)` };
    if (entry.metadata.annotations?.[HEALTH_CHECKS_ANNOTATION] === undefined) return { identity };
    const why = validate ? cannotControlEntry(identity, name, entry.metadata.namespace ?? proxy.namespace, (entry.spec as { serviceAccount?: string }).serviceAccount) : undefined;
    return why ? { refuse: grpc.status.PERMISSION_DENIED, details: why } : { identity, healthEntry: workloadEntryKey(proxy.namespace, proxy.workloadEntry) };
  }

  /** Whose health a proxy reports (registry key and a name for logs); undefined (logged once per stream) when its reports have no effect. */
  #healthTarget(con: AdsConnection): { key: string; name: string } | undefined {
    const p = con.proxy;
    if (p.workloadGroup) return { key: p.id, name: `WorkloadGroup ${p.namespace}/${p.workloadGroup}` };
    // Auto-registered without a group (a `rig up` replica): its readiness, as a Kubernetes pod's.
    if (!p.workloadEntry && p.healthChecked && this.#o.registry.hasWorkload(p.id)) return { key: p.id, name: `workload ${p.namespace}/${p.workloadName}` };
    // Only the entry it was admitted to control at connection (Istio's proxy.WorkloadEntryName).
    if (con.healthEntry) return { key: con.healthEntry, name: `WorkloadEntry ${p.namespace}/${p.workloadEntry}` };
    let why = p.healthChecked
      ? 'it is not registered as a workload (no INSTANCE_IPS) and stands for no WorkloadEntry (WORKLOAD_ENTRY)'
      : 'its node metadata declares no readiness probe (PROXY_CONFIG.readinessProbe) and it stands for no WorkloadEntry (WORKLOAD_ENTRY)';
    if (p.workloadEntry) why = `WorkloadEntry ${p.namespace}/${p.workloadEntry} was not annotated ${HEALTH_CHECKS_ANNOTATION} when the proxy connected`;
    if (!con.healthIgnored) this.#log.warn({ proxy: p.id }, `health report ignored: ${why}`);
    con.healthIgnored = true;
    return undefined;
  }

  #onRequest(con: AdsConnection, req: DiscoveryRequestJson): void {
    const typeUrl = req.type_url ?? '';
    if (typeUrl === HEALTH_INFO_TYPE) return this.#onHealth(con, req);
    const gen = GENERATORS[typeUrl];
    if (!gen) {
      this.#log.warn({ proxy: con.proxy.id, type: typeUrl }, 'request for an unknown type URL ignored');
      return;
    }
    const w = con.watch(typeUrl);
    const rawNames = req.resource_names ?? [];
    const names = gen.fullState && (rawNames.length === 0 || (rawNames.length === 1 && rawNames[0] === '*')) ? undefined : rawNames;
    const nonce = req.response_nonce ?? '';
    if (nonce) {
      if (nonce !== w.nonceSent) {
        this.#o.metrics.expiredNonce.inc({ type: gen.short });
        return;
      }
      if (req.error_detail && (req.error_detail.code || req.error_detail.message)) {
        w.lastNack = { version: w.versionSent ?? '', nonce, message: req.error_detail.message ?? '', at: new Date().toISOString() };
        this.#o.metrics.rejects.inc({ type: gen.short });
        this.#log.warn({ proxy: con.proxy.id, type: gen.short, version: w.versionSent, error: req.error_detail.message }, 'proxy rejected configuration (NACK)');
      } else {
        w.nonceAcked = nonce;
        w.versionAcked = req.version_info ?? '';
        w.ackedAt = new Date().toISOString();
        if (w.lastNack && w.lastNack.nonce !== nonce) w.lastNack = undefined;
      }
      w.awaiting = false;
      this.#release(w);
      if (!sameNames(w.names, names)) {
        const before = new Set(w.names);
        const now = new Set(names);
        const added = (names ?? []).filter((n) => !before.has(n));
        for (const n of before) if (!now.has(n)) w.sent.delete(n);
        w.names = names;
        if (gen.fullState || added.length || w.pending) this.#pushType(con, typeUrl, this.#push, gen.fullState);
      } else if (w.pending) this.#pushType(con, typeUrl, this.#push, false, namesIn(w.pendingNames));
      this.#drainThrottled();
      return;
    }
    // A new subscription (or a reconnect): send the full current state of the type.
    w.names = names;
    w.sent.clear();
    w.full = undefined;
    this.#pushType(con, typeUrl, this.#push, true);
  }
}

/**
 * Names a held-back push covers, added to those already held: `wanted` narrows a push to some of
 * the watched names (EDS of changed hosts); undefined (a push of everything) stays undefined.
 */
function heldNames(held: Set<string> | undefined, names: readonly string[] | undefined, wanted: NameFilter | undefined): Set<string> | undefined {
  if (!held || !wanted || !names) return undefined;
  for (const n of wanted.list(names)) held.add(n);
  return held;
}

/** A push of the EDS of `hosts` alone. */
function edsOf(hosts: ReadonlySet<string>): PushScope {
  return hosts.size ? { types: [ENDPOINT_TYPE], edsHosts: hosts } : { types: [] };
}

function namesIn(only: Set<string> | undefined): NameFilter | undefined {
  return only && nameFilter((n) => only.has(n));
}

/** Whether a cluster name belongs to one of `hosts` (memoized: every proxy asks about the same names). */
function clusterOfHosts(hosts: ReadonlySet<string>): NameFilter {
  return nameFilter((name) => hosts.has(parseClusterName(name)?.host ?? ''));
}

function sameNames(a: string[] | undefined, b: string[] | undefined): boolean {
  // Requests' names are interned by their bytes (request-decoder.ts): an unchanged list is the same array.
  if (a === b || !a || !b) return a === b;
  if (a.length !== b.length) return false;
  // ACKs repeat the names in the order of the request: compare in place before building a set.
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  if (i === a.length) return true;
  const s = new Set(a);
  return b.every((n) => s.has(n));
}
