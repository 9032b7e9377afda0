// What compiled configs and the request path share of the running proxy: the live cluster set,
// routes from RDS, secrets, stats, stream observers and the node identity.
import type net from 'node:net';
import type { Logger } from '../core/log.ts';
import type { ClusterManager } from './upstream/cluster-manager.ts';
import type { RouteTable } from './routing/route-config.ts';
import type { RdsRouteHolder } from './routing/rds-route-holder.ts';
import type { SecretStore } from './tls/secrets.ts';
import type { Stats } from './stats/stats.ts';
import type { StreamInfo } from './stream-info.ts';
import type { RequestHead, ResponseHead } from './filters/filter.ts';
import type { OverloadState } from './overload/overload-manager.ts';
import type { EnvoyRuntime } from './envoy-runtime/index.ts';
import type { ExtensionConfigSubscription, ExtensionKind } from './filters/extension-config.ts';

/** Called once per finished HTTP stream or TCP connection (metrics, access logs, spans). */
export type StreamObserver = (info: StreamInfo, request: RequestHead | undefined, response: ResponseHead | undefined) => void;

/** A route configuration slot: inline, or named and filled by RDS (undefined until it arrives). */
export interface RouteHolder {
  readonly name: string;
  table: RouteTable | undefined;
}

export interface NodeInfo {
  id: string;
  cluster: string;
  metadata: Record<string, unknown>;
}

export interface ProxyContext {
  readonly stats: Stats;
  readonly clusters: ClusterManager;
  readonly secrets: SecretStore;
  readonly log: Logger;
  readonly node: NodeInfo;
  readonly observers: StreamObserver[];
  /** Envoy's runtime (layered_runtime): configs take handles from it at compile time. */
  readonly runtime: EnvoyRuntime;
  /** RDS route configuration by name (created on first reference). */
  routeHolder(name: string): RdsRouteHolder;
  /** The ECDS subscription of an extension config by filter kind and name (created on first reference). */
  extensionConfig(kind: ExtensionKind, name: string): ExtensionConfigSubscription;
  /** The overload manager's verdicts (src/proxy/overload), when the bootstrap configures one. */
  overload?: OverloadState;
  /** Set while draining: responses carry Connection: close, h2 sessions get GOAWAY. */
  draining: boolean;
  /** Set by the admin's POST /healthcheck/fail (cleared by /healthcheck/ok): health_check filters answer 503. */
  healthCheckFailed: boolean;
  /** Original destination of a redirected connection (interception part), when available. */
  originalDst(socket: net.Socket): { address: string; port: number } | undefined;
}
