// Istio's standard metrics (names, types, buckets and labels as Istio's stats plugin writes them).
// Label values are computed once per distinct (peer, principal, cluster, authority,
// code/grpc/mtls/protocol, flags) and the metric cells are cached in nested maps keyed by those
// values (stats-recorder.ts): a request does map lookups and increments, no label strings are
// built (except for user-defined CEL dimensions, evaluated per request).
import type { RequestHead, ResponseHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { formatResponseFlags } from '../response-flags.ts';
import { UNKNOWN, UNKNOWN_PEER, type PeerLabels } from './peer-metadata.ts';
import type { CelProgram } from './cel-attributes.ts';
import { CounterFamily, HistogramFamily, type CounterCell, type HistogramCell } from './metric-families.ts';

/** Istio's metric names without the `istio_` prefix (the names Telemetry overrides and PluginConfig use). */
export const HTTP_METRICS = ['requests_total', 'request_duration_milliseconds', 'request_bytes', 'response_bytes'] as const;
/** gRPC message counts (Istio's GRPC_REQUEST_MESSAGES / GRPC_RESPONSE_MESSAGES), for gRPC streams only. */
export const GRPC_METRICS = ['request_messages_total', 'response_messages_total'] as const;
export const TCP_METRICS = ['tcp_sent_bytes_total', 'tcp_received_bytes_total', 'tcp_connections_opened_total', 'tcp_connections_closed_total'] as const;
export type MetricName = (typeof HTTP_METRICS)[number] | (typeof GRPC_METRICS)[number] | (typeof TCP_METRICS)[number];

/** Istio's default buckets: duration in ms, sizes exponential (1, 10, ... 1e8 bytes). */
export const DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
export const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];

const PEER_LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
];
export const HTTP_LABELS = [...PEER_LABELS, 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy'];
export const TCP_LABELS = [...PEER_LABELS, 'response_flags', 'connection_security_policy'];

/** Per-metric Telemetry/PluginConfig override, compiled. */
export interface MetricOverride {
  readonly drop: boolean;
  readonly remove: ReadonlySet<string>;
  /** Added or replaced dimensions: label name → CEL program. */
  readonly dimensions: readonly (readonly [string, CelProgram])[];
}

export type Reporter = 'source' | 'destination';

export interface ServiceLabels {
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

const UNKNOWN_SERVICE: ServiceLabels = { host: UNKNOWN, name: UNKNOWN, namespace: UNKNOWN };

/** The destination service from Istio's cluster name (outbound|port|subset|fqdn). */
export function serviceOfCluster(cluster: string | undefined): ServiceLabels | undefined {
  if (!cluster?.startsWith('outbound|')) return undefined;
  const host = cluster.slice(cluster.lastIndexOf('|') + 1);
  return host ? serviceOfHost(host) : undefined;
}

/** Service labels for a host: `<name>.<ns>.svc.<domain>` splits into name and namespace. */
export function serviceOfHost(host: string): ServiceLabels {
  const m = /^([^.]+)\.([^.]+)\.svc(\.|$)/.exec(host);
  return m ? { host, name: m[1], namespace: m[2] } : { host, name: host, namespace: UNKNOWN };
}

/** The service a sidecar's client named in its SNI, Istio's `outbound_.<port>_.<subset>_.<fqdn>`. */
export function serviceOfSni(sni: string | undefined): ServiceLabels | undefined {
  if (!sni?.startsWith('outbound_.')) return undefined;
  const i = sni.indexOf('_.', sni.indexOf('_.', 10) + 2);
  return i > 0 && i + 2 < sni.length ? serviceOfHost(sni.slice(i + 2)) : undefined;
}

/** Server side: the service from the request's authority, short names completed with the local namespace. */
export function serviceOfAuthority(authority: string, localNamespace: string): ServiceLabels {
  if (!authority) return UNKNOWN_SERVICE;
  let host = authority;
  const colon = host.lastIndexOf(':');
  if (colon > 0 && !host.endsWith(']')) host = host.slice(0, colon);
  if (/^[\d.]+$/.test(host) || host.startsWith('[')) return UNKNOWN_SERVICE;
  const dots = host.split('.').length - 1;
  if (dots === 0 && localNamespace !== UNKNOWN) host = `${host}.${localNamespace}.svc.cluster.local`;
  else if (dots === 1) host = `${host}.svc.cluster.local`;
  else if (host.endsWith('.svc')) host = `${host}.cluster.local`;
  return serviceOfHost(host);
}

export interface HttpChildren {
  readonly requests?: CounterCell;
  /** gRPC only: Istio labels these with the peer labels alone (no protocol, code, flags, security policy). */
  readonly requestMessages?: CounterCell;
  readonly responseMessages?: CounterCell;
  readonly duration?: HistogramCell;
  readonly requestBytes?: HistogramCell;
  readonly responseBytes?: HistogramCell;
}

export interface TcpChildren {
  readonly sent?: CounterCell;
  readonly received?: CounterCell;
  readonly opened?: CounterCell;
  readonly closed?: CounterCell;
}

/** What differs between two reports of the same peer pair. */
export interface PeerSide {
  readonly peer: PeerLabels;
  readonly peerPrincipal: string;
  readonly localPrincipal: string;
  readonly service: ServiceLabels;
}

export class IstioMetrics {
  readonly requests = new CounterFamily('istio_requests_total', 'Total number of requests handled by the proxy');
  readonly duration = new HistogramFamily('istio_request_duration_milliseconds', 'Duration of requests in milliseconds', DURATION_BUCKETS);
  readonly requestBytes = new HistogramFamily('istio_request_bytes', 'Size of HTTP request bodies', SIZE_BUCKETS);
  readonly responseBytes = new HistogramFamily('istio_response_bytes', 'Size of HTTP response bodies', SIZE_BUCKETS);
  readonly requestMessages = new CounterFamily('istio_request_messages_total', 'gRPC messages sent by clients');
  readonly responseMessages = new CounterFamily('istio_response_messages_total', 'gRPC messages sent by servers');
  readonly tcpSent = new CounterFamily('istio_tcp_sent_bytes_total', 'Bytes sent in responses over TCP connections');
  readonly tcpReceived = new CounterFamily('istio_tcp_received_bytes_total', 'Bytes received in requests over TCP connections');
  readonly tcpOpened = new CounterFamily('istio_tcp_connections_opened_total', 'TCP connections opened');
  readonly tcpClosed = new CounterFamily('istio_tcp_connections_closed_total', 'TCP connections closed');

  /** Prometheus text exposition of every family. */
  render(): string {
    return [this.requests, this.duration, this.requestBytes, this.responseBytes, this.requestMessages, this.responseMessages, this.tcpSent, this.tcpReceived, this.tcpOpened, this.tcpClosed].map((f) => f.render()).join('');
  }
}

/** Istio's label values for one (reporter, local, peer side) combination. */
export function peerLabelValues(reporter: Reporter, local: PeerLabels, side: PeerSide, mtls: boolean, protocol: string): Record<string, string> {
  const src = reporter === 'destination' ? side.peer : local;
  const dst = reporter === 'destination' ? local : side.peer;
  const srcPrincipal = (reporter === 'destination' ? side.peerPrincipal : side.localPrincipal) || UNKNOWN;
  const dstPrincipal = (reporter === 'destination' ? side.localPrincipal : side.peerPrincipal) || UNKNOWN;
  return {
    reporter,
    source_workload: src.workload,
    source_canonical_service: src.canonicalService,
    source_canonical_revision: src.canonicalRevision,
    source_workload_namespace: src.namespace,
    source_principal: srcPrincipal,
    source_app: src.app,
    source_version: src.version,
    source_cluster: src.cluster,
    destination_workload: dst.workload,
    destination_workload_namespace: dst.namespace,
    destination_principal: dstPrincipal,
    destination_app: dst.app,
    destination_version: dst.version,
    destination_service: side.service.host,
    destination_canonical_service: dst.canonicalService,
    destination_canonical_revision: dst.canonicalRevision,
    destination_service_name: side.service.name,
    destination_service_namespace: side.service.namespace,
    destination_cluster: dst.cluster,
    request_protocol: protocol,
    connection_security_policy: reporter === 'source' ? UNKNOWN : mtls ? 'mutual_tls' : 'none',
  };
}

/** Applies REMOVE overrides (the label is left out) and evaluated dimensions. */
export function applyOverride(labels: Record<string, string>, o: MetricOverride | undefined, info: StreamInfo, req: RequestHead | undefined, res: ResponseHead | undefined): Record<string, string> {
  if (!o) return labels;
  const out = { ...labels };
  for (const n of o.remove) delete out[n];
  for (const [n, p] of o.dimensions) {
    let v: unknown;
    try {
      v = p(info, req, res);
    } catch {
      v = UNKNOWN;
    }
    out[n] = v === undefined || v === null ? UNKNOWN : String(v);
  }
  return out;
}

export function httpResponseLabels(info: StreamInfo): { response_code: string; grpc_response_status: string; response_flags: string } {
  return {
    response_code: String(info.responseCode),
    grpc_response_status: info.isGrpc && info.grpcStatus !== undefined ? String(info.grpcStatus) : '',
    response_flags: formatResponseFlags(info.responseFlags),
  };
}

export { UNKNOWN_PEER };
