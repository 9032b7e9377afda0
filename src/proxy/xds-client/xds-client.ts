// The proxy's ADS client (state of the world, one gRPC stream): subscribes to clusters and
// listeners (wildcard), then to the endpoints, route configurations and extension configs (ECDS)
// they reference; decodes
// every resource; hands each type's complete set to the sink; ACKs or NACKs with the sink's
// reasons (keeping the previous version); reconnects with exponential backoff and jitter while the
// proxy keeps serving its last good config. Modeled on grpc-js-xds's xds-client.ts.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  EXTENSION_CONFIG_TYPE,
  HEALTH_INFO_TYPE,
  LISTENER_TYPE,
  NDS_TYPE,
  ROUTE_TYPE,
  RUNTIME_TYPE,
  SECRET_TYPE,
  encodeMessage,
  messageType,
  unpackAny,
  type EnvoyJson,
} from '../../envoy/index.ts';
import { VERSION } from '../../core/version.ts';
import { silentLogger, type Logger } from '../../core/log.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { ecdsNamesOf, edsNamesOf, rdsNamesOf, rtdsNamesOf, sdsNamesOf } from './xds-dependencies.ts';
import { xdsServerTarget, type XdsServerTarget } from './xds-server-target.ts';
import type { XdsSink } from './xds-sink.ts';
import { prepareHttpFilters } from '../filters/registry.ts';

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const RESOURCE_WRAPPER_TYPE = 'type.googleapis.com/envoy.service.discovery.v3.Resource';
/** Subscription order (make before break): runtime layers (RTDS, as Envoy first), clusters, their endpoints, listeners, their routes and extension configs (ECDS), secrets. */
const TYPES = [RUNTIME_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, EXTENSION_CONFIG_TYPE, SECRET_TYPE, NDS_TYPE] as const;
// NDS: one unnamed NameTable (Istio's), subscribed by sidecars that capture DNS.
const WILDCARD_TYPES = new Set<string>([CLUSTER_TYPE, LISTENER_TYPE, NDS_TYPE]);
const INVALID_ARGUMENT = 3;
const INTERNAL = 13;

export interface XdsClientOptions {
  /** An Envoy v3 bootstrap with dynamic_resources.ads_config and the xDS cluster. */
  bootstrap: EnvoyJson;
  sink: XdsSink;
  log?: Logger;
  /** A file holding a bearer token, sent as `authorization` on every stream over TLS (read afresh each time). */
  tokenFile?: string;
  backoff?: BackoffOptions;
  /**
   * How long to wait for a subscribed resource before reporting it as missing (Envoy's
   * initial_fetch_timeout, grpc-js-xds's does-not-exist timer); also how long listeners wait for
   * the clusters' endpoints at start.
   */
  initialFetchTimeoutMs?: number;
}

export interface XdsTypeState {
  typeUrl: string;
  /** `*` for wildcard subscriptions, else the subscribed names. */
  subscribed: '*' | string[];
  /** The last version accepted (ACKed). */
  versionInfo: string;
  /** The nonce of the last response received on the current stream. */
  nonce: string;
  lastUpdated?: string;
  /** The last rejected update, cleared once a later one is accepted. */
  lastError?: { versionInfo: string; nonce: string; details: string; at: string };
  resourceNames: string[];
  /** Subscribed names the control plane has not sent within the fetch timeout. */
  doesNotExist: string[];
}

export interface XdsClientState {
  server: string;
  connected: boolean;
  streamsOpened: number;
  lastDisconnect?: { at: string; reason: string };
  types: XdsTypeState[];
}

interface Watch {
  typeUrl: string;
  names: Set<string>;
  version: string;
  nonce: string;
  resources: Map<string, EnvoyJson>;
  /** Whether a request for this type was sent on the current stream. */
  requested: boolean;
  /** The names last sent (to skip redundant requests). */
  sentNames: string;
  lastUpdated?: string;
  lastError?: XdsTypeState['lastError'];
  doesNotExist: Set<string>;
  timer?: NodeJS.Timeout;
}

interface RawAny {
  type_url: string;
  value: Uint8Array;
}

interface RawResponse {
  version_info: string;
  resources: RawAny[];
  type_url: string;
  nonce: string;
}

type Stream = grpc.ClientDuplexStream<EnvoyJson, RawResponse>;

export interface XdsClientEvents {
  connected: [];
  disconnected: [reason: string];
  /** A type's update was accepted. */
  ack: [typeUrl: string, versionInfo: string];
  /** A type's update was rejected. */
  nack: [typeUrl: string, versionInfo: string, details: string];
}

export class XdsClient extends EventEmitter<XdsClientEvents> {
  private readonly opts: XdsClientOptions;
  private readonly log: Logger;
  private readonly server: XdsServerTarget;
  private readonly node: EnvoyJson;
  private readonly backoff: Backoff;
  private readonly fetchTimeoutMs: number;
  private readonly watches = new Map<string, Watch>();
  private client: grpc.Client | undefined;
  private stream: Stream | undefined;
  private connected = false;
  private streamsOpened = 0;
  /** Until clusters (and their endpoints) are in, listeners wait: Envoy's initialization order. */
  private clustersWarm = false;
  private readonly capturesDns: boolean;
  private warmTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private lastDisconnect: XdsClientState['lastDisconnect'];
  /** Stream attempts in a row that ended without a response. */
  private failures = 0;
  /** The last workload health report, sent again on every new stream (as Istio's agent does). */
  private health: EnvoyJson | undefined;

  constructor(opts: XdsClientOptions) {
    super();
    this.opts = opts;
    this.log = (opts.log ?? silentLogger).child({ component: 'xds-client' });
    this.server = xdsServerTarget(opts.bootstrap);
    for (const w of this.server.warnings) this.log.warn(w);
    const node = (opts.bootstrap.node ?? {}) as EnvoyJson;
    this.node = { user_agent_name: 'rigging', user_agent_version: VERSION, ...node };
    const md = (node.metadata ?? {}) as Record<string, unknown>;
    // Istio's agent asks for the name table when it captures DNS (REDIRECT mode here).
    this.capturesDns = md.DNS_CAPTURE === 'true' || md.INTERCEPTION_MODE === 'REDIRECT';
    this.backoff = new Backoff(opts.backoff);
    this.fetchTimeoutMs = opts.initialFetchTimeoutMs ?? 15_000;
    // The runtime type is watched only when the bootstrap has rtds_layers over ADS.
    const rtds = rtdsNamesOf(opts.bootstrap);
    for (const typeUrl of TYPES) {
      if (typeUrl === RUNTIME_TYPE && !rtds.size) continue;
      this.watches.set(typeUrl, { typeUrl, names: typeUrl === RUNTIME_TYPE ? rtds : new Set(), version: '', nonce: '', resources: new Map(), requested: false, sentNames: '', doesNotExist: new Set() });
    }
    // A listener version left service: the route configurations and extension configs only it used are dropped (after the clusters, as all RDS).
    opts.sink.watchRouteNamesInUse?.(() => {
      if (this.clustersWarm && !this.stopped) this.followListenerNames();
    });
  }

  /** Opens the ADS stream (and keeps reopening it until stop()). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.client = new grpc.Client(this.server.target, this.server.credentials, {
      ...this.server.channelOptions,
      'grpc.keepalive_time_ms': 30_000,
      // A mesh's full cluster or listener set can be large (grpc's default limit is 4 MB).
      'grpc.max_receive_message_length': 256 << 20,
    });
    if (!this.clustersWarm) this.armWarmTimer();
    this.openStream();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.warmTimer);
    for (const w of this.watches.values()) clearTimeout(w.timer);
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    this.client?.close();
    this.client = undefined;
    this.connected = false;
  }

  /**
   * Reports the workload's health to the control plane (Istio's `istio.io/health` request:
   * unhealthy carries error_detail with the reason); repeated on every new stream until replaced.
   */
  reportHealth(healthy: boolean, message = ''): void {
    this.health = healthy ? { type_url: HEALTH_INFO_TYPE } : { type_url: HEALTH_INFO_TYPE, error_detail: { code: INTERNAL, message } };
    this.stream?.write(this.health);
  }

  /** The accepted resources of a type (what the sink holds), for the admin config_dump. */
  resources(typeUrl: string): ReadonlyMap<string, EnvoyJson> {
    return this.watches.get(typeUrl)?.resources ?? new Map();
  }

  state(): XdsClientState {
    return {
      server: this.server.display,
      connected: this.connected,
      streamsOpened: this.streamsOpened,
      lastDisconnect: this.lastDisconnect,
      types: [...this.watches.values()].map((w) => ({
        typeUrl: w.typeUrl,
        subscribed: WILDCARD_TYPES.has(w.typeUrl) ? '*' : [...w.names].sort(),
        versionInfo: w.version,
        nonce: w.nonce,
        lastUpdated: w.lastUpdated,
        lastError: w.lastError,
        resourceNames: [...w.resources.keys()].sort(),
        doesNotExist: [...w.doesNotExist].sort(),
      })),
    };
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    // Like grpc's call credentials, the token only travels over TLS.
    if (this.opts.tokenFile && this.server.secure) {
      try {
        const token = fs.readFileSync(this.opts.tokenFile, 'utf8').trim();
        if (token) md.set('authorization', `Bearer ${token}`);
      } catch (err) {
        this.log.warn({ file: this.opts.tokenFile, err: (err as Error).message }, 'cannot read the token file; connecting without a token');
      }
    }
    return md;
  }

  private openStream(): void {
    if (this.stopped || !this.client) return;
    this.streamsOpened++;
    for (const w of this.watches.values()) {
      w.requested = false;
      w.nonce = '';
      w.sentNames = '';
    }
    let firstRequest = true;
    const serialize = (req: EnvoyJson): Buffer => {
      // The node goes on the first request of each stream only.
      const msg = firstRequest ? { ...req, node: this.node } : req;
      firstRequest = false;
      return Buffer.from(encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', msg));
    };
    // Types are looked up per message, not kept: the proxy releases them between config changes.
    const deserialize = (bytes: Buffer): RawResponse => messageType('envoy.service.discovery.v3.DiscoveryResponse').decode(bytes) as unknown as RawResponse;
    const stream = this.client.makeBidiStreamRequest(ADS_METHOD, serialize, deserialize, this.metadata());
    this.stream = stream;
    let gotResponse = false;
    stream.on('data', (res: RawResponse) => {
      if (this.stream !== stream) return;
      if (!gotResponse) {
        gotResponse = true;
        this.backoff.reset();
        this.failures = 0;
        if (!this.connected) {
          this.connected = true;
          this.log.info({ server: this.server.display }, 'connected to the control plane');
          this.emit('connected');
        }
      }
      this.onResponseInOrder(stream, res);
    });
    stream.on('error', () => {
      // Reported through 'status' below.
    });
    stream.on('status', (status: grpc.StatusObject) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.onStreamEnd(status.code === grpc.status.OK ? 'the control plane closed the stream' : `${grpc.status[status.code]}: ${status.details}`);
    });
    this.sendInitialRequests();
  }

  private sendInitialRequests(): void {
    const rtds = this.watches.get(RUNTIME_TYPE);
    if (rtds) this.maybeSubscribe(rtds);
    const cds = this.watches.get(CLUSTER_TYPE)!;
    this.sendRequest(cds);
    // After a reconnect the proxy already holds config: resubscribe to everything at once (in
    // order), with the versions it has, so the control plane can resume.
    if (this.clustersWarm) {
      for (const t of [ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, EXTENSION_CONFIG_TYPE, SECRET_TYPE]) this.maybeSubscribe(this.watches.get(t)!);
      if (this.capturesDns) this.maybeSubscribe(this.watches.get(NDS_TYPE)!);
    }
    if (this.health) this.stream?.write(this.health);
  }

  private onStreamEnd(reason: string): void {
    const wasConnected = this.connected;
    this.connected = false;
    this.lastDisconnect = { at: new Date().toISOString(), reason };
    for (const w of this.watches.values()) clearTimeout(w.timer);
    if (this.stopped) return;
    const delay = this.backoff.next();
    if (wasConnected) this.emit('disconnected', reason);
    this.failures = wasConnected ? 1 : this.failures + 1;
    // Warn on the first failure of a series and then ever more rarely (1, 2, 4, 8... attempts).
    const loud = (this.failures & (this.failures - 1)) === 0;
    this.log[loud ? 'warn' : 'debug'](
      { server: this.server.display, reason, attempt: this.failures, retryInMs: delay },
      wasConnected ? 'xDS stream ended; keeping the last good config and reconnecting' : 'cannot reach the control plane; retrying',
    );
    this.retryTimer = setTimeout(() => this.openStream(), delay);
  }

  private sendRequest(w: Watch, response?: { nonce: string; error?: string }): void {
    if (!this.stream) return;
    const names = WILDCARD_TYPES.has(w.typeUrl) ? [] : [...w.names].sort();
    const req: EnvoyJson = { version_info: w.version, resource_names: names, type_url: w.typeUrl, response_nonce: response?.nonce ?? w.nonce };
    if (response?.error) req.error_detail = { code: INVALID_ARGUMENT, message: response.error };
    w.requested = true;
    w.sentNames = names.join('\n');
    this.stream.write(req);
    this.armDoesNotExistTimer(w);
  }

  /** Sends a (new) subscription for a non-wildcard type when its names changed. */
  private maybeSubscribe(w: Watch): void {
    const names = [...w.names].sort().join('\n');
    if (WILDCARD_TYPES.has(w.typeUrl)) {
      if (!w.requested) this.sendRequest(w);
      return;
    }
    if (w.requested ? names === w.sentNames : w.names.size === 0) return;
    this.sendRequest(w);
  }

  private armDoesNotExistTimer(w: Watch): void {
    clearTimeout(w.timer);
    if (WILDCARD_TYPES.has(w.typeUrl)) return;
    const waiting = [...w.names].filter((n) => !w.resources.has(n));
    if (waiting.length === 0) return;
    w.timer = setTimeout(() => {
      const missing = [...w.names].filter((n) => !w.resources.has(n) && !w.doesNotExist.has(n));
      for (const n of missing) w.doesNotExist.add(n);
      if (missing.length) this.log.warn({ typeUrl: w.typeUrl, names: missing }, 'the control plane has not sent these subscribed resources; treating them as not existing');
      if (w.typeUrl === ENDPOINT_TYPE) this.clustersWarmed();
    }, this.fetchTimeoutMs);
    w.timer.unref();
  }

  private decode(res: RawResponse): { resources: Map<string, EnvoyJson>; errors: string[] } {
    const resources = new Map<string, EnvoyJson>();
    const errors: string[] = [];
    res.resources.forEach((raw, i) => {
      let any: RawAny = raw;
      try {
        if (any.type_url === RESOURCE_WRAPPER_TYPE) {
          const wrapped = messageType('envoy.service.discovery.v3.Resource').decode(any.value) as unknown as { resource?: RawAny };
          if (!wrapped.resource) throw new Error('envoy.service.discovery.v3.Resource without a resource');
          any = wrapped.resource;
        }
        if (any.type_url !== res.type_url) throw new Error(`type ${any.type_url} does not match the response's type_url ${res.type_url}`);
        const json = unpackAny(any);
        // The NameTable has no name: it is the one resource of its type.
        const name = res.type_url === ENDPOINT_TYPE ? json.cluster_name : res.type_url === NDS_TYPE ? '' : json.name;
        if (typeof name !== 'string' || (!name && res.type_url !== NDS_TYPE)) throw new Error(res.type_url === ENDPOINT_TYPE ? 'cluster_name is empty' : 'name is empty');
        if (resources.has(name)) throw new Error(`duplicate resource name "${name}"`);
        resources.set(name, json);
      } catch (err) {
        errors.push(`resources[${i}]: ${(err as Error).message}`);
      }
    });
    return { resources, errors };
  }

  /** Responses that arrived while a filter engine loaded (Lua) wait for it, in order. */
  private waiting: Promise<void> | undefined;

  private onResponseInOrder(stream: Stream, res: RawResponse): void {
    const run = (): void => {
      if (this.stream === stream) this.onResponse(res);
    };
    const prepareThenRun = (): Promise<void> | void => {
      const preparing = prepareHttpFilters((typeUrl) => res.resources.some((r) => Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength).includes(typeUrl)));
      if (!preparing) return run();
      return preparing.then(run, (e: Error) => {
        this.log.error({ typeUrl: res.type_url, err: e.message }, 'a filter engine did not load; the update is applied without it');
        run();
      });
    };
    if (!this.waiting) {
      const p = prepareThenRun();
      if (!p) return;
      this.wait(p);
    } else this.wait(this.waiting.then(prepareThenRun));
  }

  private wait(p: Promise<void>): void {
    const next = p.catch((e: Error) => this.log.error({ err: e.message }, 'an xDS update failed to apply'));
    this.waiting = next;
    void next.then(() => {
      if (this.waiting === next) this.waiting = undefined;
    });
  }

  private onResponse(res: RawResponse): void {
    const w = this.watches.get(res.type_url);
    if (!w) {
      this.log.warn({ typeUrl: res.type_url }, 'ignoring a response for a type the proxy did not subscribe to');
      return;
    }
    w.nonce = res.nonce;
    const { resources, errors } = this.decode(res);
    if (errors.length) {
      this.reject(w, res, errors);
      // Refused here, unseen by the sink: it ends its waits as for an update it refuses (Envoy's onConfigUpdateFailed).
      this.opts.sink.refused?.(w.typeUrl);
      return;
    }
    let next: Map<string, EnvoyJson>;
    if (WILDCARD_TYPES.has(w.typeUrl)) {
      next = resources;
    } else {
      // Endpoints and routes need not all come in every response: only those sent are replaced.
      next = new Map([...w.resources].filter(([n]) => w.names.has(n)));
      for (const [n, r] of resources) if (w.names.has(n)) next.set(n, r);
    }
    const problems = this.applyToSink(w.typeUrl, next, res.version_info);
    if (problems.length) {
      this.reject(w, res, problems);
      return;
    }
    const after = this.opts.sink.ackAfter?.(w.typeUrl);
    if (!after) return this.accepted(w, res, resources, next);
    // In force once its fetch settled: ACKed then, unless a newer response or stream came meanwhile.
    const stream = this.stream;
    void after.then(() => {
      if (this.stream === stream && w.nonce === res.nonce) this.accepted(w, res, resources, next);
    });
  }

  private accepted(w: Watch, res: RawResponse, resources: ReadonlyMap<string, EnvoyJson>, next: Map<string, EnvoyJson>): void {
    w.version = res.version_info;
    w.resources = next;
    w.lastUpdated = new Date().toISOString();
    w.lastError = undefined;
    for (const n of resources.keys()) w.doesNotExist.delete(n);
    this.sendRequest(w, { nonce: res.nonce });
    this.log.debug({ typeUrl: w.typeUrl, version: res.version_info, resources: next.size }, 'xDS update accepted');
    this.emit('ack', w.typeUrl, res.version_info);
    this.followDependencies(w);
  }

  private applyToSink(typeUrl: string, resources: ReadonlyMap<string, EnvoyJson>, version: string): string[] {
    try {
      return this.opts.sink.apply(typeUrl, resources, version);
    } catch (err) {
      this.log.error({ typeUrl, err }, 'the proxy failed to apply an xDS update');
      return [`internal error applying the update: ${(err as Error).message}`];
    }
  }

  private reject(w: Watch, res: RawResponse, errors: string[]): void {
    const details = errors.join('; ');
    w.lastError = { versionInfo: res.version_info, nonce: res.nonce, details, at: new Date().toISOString() };
    this.log.warn({ typeUrl: w.typeUrl, version: res.version_info, keptVersion: w.version, details }, 'xDS update rejected (NACK); keeping the previous config');
    this.sendRequest(w, { nonce: res.nonce, error: details });
    this.emit('nack', w.typeUrl, res.version_info, details);
    // As in Envoy, a rejected update still ends the clusters' initial fetch: listeners follow.
    if (!this.clustersWarm) {
      const eds = this.watches.get(ENDPOINT_TYPE)!;
      if (w.typeUrl === ENDPOINT_TYPE || (w.typeUrl === CLUSTER_TYPE && [...eds.names].every((n) => eds.resources.has(n)))) this.clustersWarmed();
    }
  }

  /** After an accepted update, adjust the EDS/RDS subscriptions it implies. */
  private followDependencies(w: Watch): void {
    if (w.typeUrl === CLUSTER_TYPE) {
      this.resubscribe(this.watches.get(ENDPOINT_TYPE)!, edsNamesOf(w.resources.values()));
      if (!this.clustersWarm) {
        const eds = this.watches.get(ENDPOINT_TYPE)!;
        if (eds.names.size === 0) this.clustersWarmed();
        else this.armWarmTimer();
      }
    } else if (w.typeUrl === ENDPOINT_TYPE) {
      if (!this.clustersWarm && [...w.names].every((n) => w.resources.has(n))) this.clustersWarmed();
    } else if (w.typeUrl === LISTENER_TYPE) {
      this.followListenerNames();
    }
    if (w.typeUrl === CLUSTER_TYPE || w.typeUrl === LISTENER_TYPE) {
      const secrets = sdsNamesOf(this.watches.get(CLUSTER_TYPE)!.resources.values(), this.watches.get(LISTENER_TYPE)!.resources.values());
      this.resubscribe(this.watches.get(SECRET_TYPE)!, secrets);
    }
  }

  /** Listeners wait for clusters at most one fetch timeout (Envoy's initial_fetch_timeout). */
  private armWarmTimer(): void {
    clearTimeout(this.warmTimer);
    this.warmTimer = setTimeout(() => this.clustersWarmed(), this.fetchTimeoutMs);
    this.warmTimer.unref();
  }

  private clustersWarmed(): void {
    if (this.clustersWarm) return;
    this.clustersWarm = true;
    clearTimeout(this.warmTimer);
    this.maybeSubscribe(this.watches.get(LISTENER_TYPE)!);
    this.followListenerNames();
    if (this.capturesDns) this.maybeSubscribe(this.watches.get(NDS_TYPE)!);
  }

  /**
   * RDS and ECDS: the route configurations and extension configs of the latest listeners and of the
   * sink's listener versions still serving, warming or draining (a version serving while its update warms on
   * other ones keeps its own).
   */
  private followListenerNames(): void {
    const listeners = this.watches.get(LISTENER_TYPE)!.resources.values();
    const routes = rdsNamesOf(listeners);
    for (const n of this.opts.sink.routeNamesInUse?.() ?? []) routes.add(n);
    this.resubscribe(this.watches.get(ROUTE_TYPE)!, routes);
    const extensions = ecdsNamesOf(this.watches.get(LISTENER_TYPE)!.resources.values());
    for (const n of this.opts.sink.extensionNamesInUse?.() ?? []) extensions.add(n);
    this.resubscribe(this.watches.get(EXTENSION_CONFIG_TYPE)!, extensions);
  }

  private resubscribe(w: Watch, names: Set<string>): void {
    const removed = [...w.names].filter((n) => !names.has(n));
    w.names = names;
    for (const n of removed) w.doesNotExist.delete(n);
    if (removed.some((n) => w.resources.has(n))) {
      // A cluster or listener is gone: its endpoints / routes go too.
      const next = new Map([...w.resources].filter(([n]) => names.has(n)));
      const problems = this.applyToSink(w.typeUrl, next, w.version);
      if (problems.length) this.log.error({ typeUrl: w.typeUrl, problems }, 'the proxy refused to drop unreferenced resources');
      else w.resources = next;
    }
    this.maybeSubscribe(w);
  }
}
