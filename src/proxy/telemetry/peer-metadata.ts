// Istio's peer metadata exchange over HTTP: `x-envoy-peer-metadata-id` carries the node id and
// `x-envoy-peer-metadata` the base64 of a google.protobuf.Struct with the node metadata (the same
// bytes an Envoy with Istio's filters writes and reads). Decoded headers are cached by value, so
// one peer is one object: metric label caches key on it (no string building per request).
import { decodeMessage, encodeMessage } from '../../envoy/index.ts';
import type { NodeInfo } from '../context.ts';
import { detachedString } from '../../core/detached-string.ts';

export const PEER_ID_HEADER = 'x-envoy-peer-metadata-id';
export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
/** ALPN protocol of Istio's TCP metadata exchange (mTLS between sidecars). */
export const PEER_EXCHANGE_ALPN = 'istio-peer-exchange';

/** The node metadata keys Istio exchanges with peers. */
const EXCHANGED = ['NAME', 'NAMESPACE', 'LABELS', 'WORKLOAD_NAME', 'CLUSTER_ID', 'MESH_ID', 'SERVICE_ACCOUNT', 'OWNER', 'INSTANCE_IPS', 'APP_CONTAINERS', 'ISTIO_VERSION'];

/** A peer's (or this proxy's) workload as Istio's metric labels see it. */
export interface PeerLabels {
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly cluster: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly serviceAccount: string;
}

export const UNKNOWN = 'unknown';

export const UNKNOWN_PEER: PeerLabels = Object.freeze({
  workload: UNKNOWN,
  namespace: UNKNOWN,
  app: UNKNOWN,
  version: UNKNOWN,
  cluster: UNKNOWN,
  canonicalService: UNKNOWN,
  canonicalRevision: UNKNOWN,
  serviceAccount: UNKNOWN,
});

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Labels from node metadata (Istio: app / version, canonical names from service.istio.io labels). */
export function peerLabels(md: Record<string, unknown> | undefined): PeerLabels {
  if (!md) return UNKNOWN_PEER;
  let labels = md.LABELS as Record<string, unknown> | string | undefined;
  if (typeof labels === 'string') {
    try {
      labels = JSON.parse(labels) as Record<string, unknown>;
    } catch {
      labels = undefined;
    }
  }
  const l = (labels ?? {}) as Record<string, unknown>;
  const app = str(l.app) ?? str(l['app.kubernetes.io/name']);
  const version = str(l.version) ?? str(l['app.kubernetes.io/version']);
  const workload = str(md.WORKLOAD_NAME) ?? UNKNOWN;
  return Object.freeze({
    workload,
    namespace: str(md.NAMESPACE) ?? UNKNOWN,
    app: app ?? UNKNOWN,
    version: version ?? UNKNOWN,
    cluster: str(md.CLUSTER_ID) ?? UNKNOWN,
    canonicalService: str(l['service.istio.io/canonical-name']) ?? app ?? (workload !== UNKNOWN ? workload : UNKNOWN),
    canonicalRevision: str(l['service.istio.io/canonical-revision']) ?? version ?? 'latest',
    serviceAccount: str(md.SERVICE_ACCOUNT) ?? UNKNOWN,
  });
}

/** The metadata this proxy sends to its peers, encoded once. */
export interface LocalPeer {
  readonly id: string;
  /** The exchanged node metadata keys. */
  readonly metadata: Record<string, unknown>;
  readonly header: string;
  readonly labels: PeerLabels;
}

export function localPeer(node: NodeInfo): LocalPeer {
  const md: Record<string, unknown> = {};
  for (const k of EXCHANGED) if (node.metadata[k] !== undefined) md[k] = node.metadata[k];
  if (md.NAME === undefined) {
    // Node id sidecar~ip~pod.ns~ns.svc.cluster.local: the pod name.
    const pod = node.id.split('~')[2];
    if (pod) md.NAME = pod.slice(0, pod.lastIndexOf('.') > 0 ? pod.lastIndexOf('.') : undefined);
  }
  return { id: node.id, metadata: md, header: Buffer.from(encodeMessage('google.protobuf.Struct', md)).toString('base64'), labels: peerLabels(md) };
}

export interface DecodedPeer {
  readonly metadata: Record<string, unknown>;
  readonly labels: PeerLabels;
}

const MAX_CACHED = 1024;
const decoded = new Map<string, DecodedPeer | null>();

/** Decodes an x-envoy-peer-metadata value; undefined when it is not a valid Struct. Cached by value. */
export function decodePeerHeader(value: string): DecodedPeer | undefined {
  const hit = decoded.get(value);
  if (hit !== undefined) return hit ?? undefined;
  let out: DecodedPeer | null = null;
  try {
    const metadata = decodeMessage('google.protobuf.Struct', Buffer.from(value, 'base64')) as Record<string, unknown>;
    if (metadata && typeof metadata === 'object') out = { metadata, labels: peerLabels(metadata) };
  } catch {
    out = null;
  }
  if (decoded.size >= MAX_CACHED) decoded.delete(decoded.keys().next().value as string);
  // A copy of the header value: the cache outlives the head it was cut from.
  decoded.set(detachedString(value), out);
  return out ?? undefined;
}

/** Labels of a peer known only by its SPIFFE id (spiffe://td/ns/<ns>/sa/<sa>), cached per principal. */
const byPrincipal = new Map<string, PeerLabels>();
export function principalLabels(principal: string): PeerLabels {
  let p = byPrincipal.get(principal);
  if (!p) {
    const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
    p = m ? Object.freeze({ ...UNKNOWN_PEER, namespace: m[1], serviceAccount: m[2] }) : UNKNOWN_PEER;
    if (byPrincipal.size >= MAX_CACHED) byPrincipal.clear();
    byPrincipal.set(principal, p);
  }
  return p;
}
