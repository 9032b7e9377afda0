// envoy.filters.http.peer_metadata (Istio's HTTP metadata exchange, also accepted under its older
// name istio.metadata_exchange): TypedStruct io.istio.http.peer_metadata.Config with
// downstream_discovery / upstream_discovery / downstream_propagation / upstream_propagation lists
// of `{ istio_headers: {} }`. Discovery reads the peer's x-envoy-peer-metadata(-id) into the
// StreamInfo (downstreamPeer / upstreamPeer, next to the mTLS principal) and removes the headers,
// so the application never sees them; propagation adds this proxy's metadata.
// Propagation with istio_headers.skip_external_clusters (istiod's metadataExchangeHeaders IN_MESH)
// leaves the headers out when the request's cluster is outside the mesh, as Istio's proxy decides
// it: the cluster is PassthroughCluster or its filter_metadata istio.external is true.
import type { HttpFilter, HttpFilterFactory, RequestHead, ResponseHead, StreamCallbacks, HeaderMap } from '../filters/filter.ts';
import { FilterStatus } from '../filters/filter.ts';
import type { Reader } from '../config/reader.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { PEER_ID_HEADER, PEER_METADATA_HEADER, decodePeerHeader, type LocalPeer } from './peer-metadata.ts';
import { telemetryOf } from './proxy-telemetry.ts';
import { typedStructValue } from './typed-struct.ts';
import { firstHeaderValue } from '../http/first-header-value.ts';

export const PEER_METADATA_FILTER = 'envoy.filters.http.peer_metadata';
export const PEER_METADATA_TYPE = 'type.googleapis.com/io.istio.http.peer_metadata.Config';

interface PeerMetadataConfig {
  readonly downstreamDiscovery: boolean;
  readonly upstreamDiscovery: boolean;
  readonly downstreamPropagation: boolean;
  readonly upstreamPropagation: boolean;
  /** Propagation leaves clusters outside the mesh out (every istio_headers entry has skip_external_clusters). */
  readonly downstreamSkipExternal: boolean;
  readonly upstreamSkipExternal: boolean;
  readonly local: LocalPeer | undefined;
  readonly clusters: ClusterManager;
}

interface Methods {
  readonly on: boolean;
  readonly skipExternal: boolean;
}

function readMethods(r: Reader, key: string, propagation: boolean): Methods {
  let on = false;
  let skipExternal = true;
  for (const m of r.objs(key)) {
    const h = m.obj('istio_headers');
    if (h) {
      on = true;
      const skip = h.bool('skip_external_clusters', false);
      if (!propagation && skip) h.issues.warn(h.at('skip_external_clusters'), 'skip_external_clusters applies to propagation only, as in Istio; ignored in discovery');
      skipExternal &&= skip;
      h.done();
      m.done();
    } else {
      m.issues.error(m.path, 'only istio_headers discovery/propagation is supported (workload_discovery needs the ambient workload API)');
      m.accept(...Object.keys(m.raw));
    }
  }
  return { on, skipExternal: on && skipExternal };
}

const PASSTHROUGH_CLUSTER = 'PassthroughCluster';

function isExternal(clusters: ClusterManager, name: string | undefined): boolean {
  if (name === undefined) return false;
  if (name === PASSTHROUGH_CLUSTER) return true;
  const md = clusters.get(name)?.config.raw.metadata as { filter_metadata?: { istio?: { external?: unknown } } } | undefined;
  return md?.filter_metadata?.istio?.external === true;
}

function strip(h: HeaderMap): string | undefined {
  const md = firstHeaderValue(h[PEER_METADATA_HEADER]);
  if (md !== undefined) delete h[PEER_METADATA_HEADER];
  if (h[PEER_ID_HEADER] !== undefined) delete h[PEER_ID_HEADER];
  return md;
}

class PeerMetadataFilter implements HttpFilter {
  private readonly c: PeerMetadataConfig;
  private readonly cb: StreamCallbacks;

  constructor(c: PeerMetadataConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const c = this.c;
    const md = strip(head.headers);
    if (c.downstreamDiscovery && md) {
      const peer = decodePeerHeader(md);
      if (peer) {
        const info = this.cb.streamInfo;
        info.downstreamPeer = { principal: info.downstreamPeer?.principal, metadata: peer.metadata };
      }
    }
    if (c.upstreamPropagation && c.local && !(c.upstreamSkipExternal && this.externalUpstream())) {
      head.headers[PEER_ID_HEADER] = c.local.id;
      head.headers[PEER_METADATA_HEADER] = c.local.header;
    }
    return FilterStatus.Continue;
  }

  encodeHeaders(head: ResponseHead): void {
    const c = this.c;
    const md = strip(head.headers);
    if (c.upstreamDiscovery && md) {
      const peer = decodePeerHeader(md);
      if (peer) {
        const info = this.cb.streamInfo;
        info.upstreamPeer = { principal: info.upstreamPeer?.principal, metadata: peer.metadata };
      }
    }
    if (c.downstreamPropagation && c.local && !(c.downstreamSkipExternal && this.externalUpstream())) {
      head.headers[PEER_ID_HEADER] = c.local.id;
      head.headers[PEER_METADATA_HEADER] = c.local.header;
    }
  }

  /** Whether the request's cluster is outside the mesh (Envoy's upstream cluster info, set with the route). */
  private externalUpstream(): boolean {
    // Resolves the route again when an earlier filter cleared it, which updates streamInfo.upstreamCluster.
    this.cb.matchedRoute();
    return isExternal(this.c.clusters, this.cb.streamInfo.upstreamCluster);
  }
}

export const peerMetadataFilterFactory: HttpFilterFactory<PeerMetadataConfig> = {
  name: PEER_METADATA_FILTER,
  typeUrls: [],
  compile(r, ctx) {
    const v = typedStructValue(r, [PEER_METADATA_TYPE], PEER_METADATA_FILTER);
    const t = telemetryOf(ctx.stats);
    const none: Methods = { on: false, skipExternal: false };
    const downstreamDiscovery = v ? readMethods(v, 'downstream_discovery', false) : none;
    const upstreamDiscovery = v ? readMethods(v, 'upstream_discovery', false) : none;
    const downstreamPropagation = v ? readMethods(v, 'downstream_propagation', true) : none;
    const upstreamPropagation = v ? readMethods(v, 'upstream_propagation', true) : none;
    const config: PeerMetadataConfig = {
      downstreamDiscovery: downstreamDiscovery.on,
      upstreamDiscovery: upstreamDiscovery.on,
      downstreamPropagation: downstreamPropagation.on,
      upstreamPropagation: upstreamPropagation.on,
      downstreamSkipExternal: downstreamPropagation.skipExternal,
      upstreamSkipExternal: upstreamPropagation.skipExternal,
      local: t?.local,
      clusters: ctx.clusters,
    };
    // Shares the downstream peer with upstream-side filters (Istio's waypoints); rig proxy has none that read it.
    v?.accept('shared_with_upstream');
    v?.done();
    return config;
  },
  create(config, cb) {
    return new PeerMetadataFilter(config, cb);
  },
};

/** The same filter under Istio's older extension name. */
export const metadataExchangeAliasFactory: HttpFilterFactory<PeerMetadataConfig> = { ...peerMetadataFilterFactory, name: 'istio.metadata_exchange' };
