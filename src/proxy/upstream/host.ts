// An upstream host (Envoy's Host): one endpoint of a cluster, with the state the load balancer,
// health checker and outlier detector share.

export interface Locality {
  region?: string;
  zone?: string;
  sub_zone?: string;
}

export const HealthFlag = {
  /** Failed active health checking. */
  FailedActiveHc: 1 << 0,
  /** Ejected by outlier detection. */
  FailedOutlierCheck: 1 << 1,
  /** EDS said UNHEALTHY / DRAINING / TIMEOUT. */
  FailedEdsHealth: 1 << 2,
  /** EDS said DEGRADED. */
  DegradedEdsHealth: 1 << 3,
  /** Waiting for the first active health check to pass. */
  PendingActiveHc: 1 << 4,
} as const;

export interface Host {
  /** "ip:port" (or the pipe path), the identity of the host within its cluster. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  /** Hostname from EDS/DNS, for SNI or Host rewrite when configured. */
  readonly hostname?: string;
  /** load_balancing_weight (default 1). */
  readonly weight: number;
  readonly locality: Locality;
  readonly priority: number;
  /** The endpoint's metadata.filter_metadata (e.g. istio: {workload}, envoy.transport_socket_match: {tlsMode: istio}). */
  readonly metadata: Record<string, Record<string, unknown>>;
  /** Bit set of HealthFlag; 0 means healthy. */
  healthFlags: number;
  /** Requests in flight to this host (LEAST_REQUEST reads it; the router maintains it). */
  activeRequests: number;
}

/**
 * Envoy's per-host stats (HostStats, shown by admin /clusters), plain counters on the host: the
 * pools count connections and, as a request is put on a connection, rq_total (cluster.ts; a
 * byte-stream connection, stream-connect.ts and tcp_proxy, counts both itself); the router
 * counts responses (http-stream.ts). rq_active is Host.activeRequests.
 */
export interface HostCounters {
  cxTotal: number;
  cxActive: number;
  cxConnectFail: number;
  rqTotal: number;
  /** 5xx responses, retried responses and resets, requests the router gave up on (router.cc). */
  rqError: number;
  /** Final non-5xx responses (gRPC: by grpc-status, once known). */
  rqSuccess: number;
  /** Per-try and route timeouts. */
  rqTimeout: number;
}

export function isHealthy(h: Host): boolean {
  return (h.healthFlags & ~HealthFlag.DegradedEdsHealth) === 0;
}
