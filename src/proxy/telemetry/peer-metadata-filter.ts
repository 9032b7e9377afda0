// envoy.filters.http.peer_metadata (Istio's HTTP metadata exchange, also accepted under its older
// name istio.metadata_exchange): TypedStruct io.istio.http.peer_metadata.Config with
// downstream_discovery / upstream_discovery / downstream_propagation / upstream_propagation lists
// of `{ istio_headers: {} }`. Discovery reads the peer's x-envoy-peer-metadata(-id) into the
// StreamInfo (downstreamPeer / upstreamPeer, next to the mTLS principal) and removes the headers,
// so the application never sees them; propagation adds this proxy's metadata.
import type { HttpFilter, HttpFilterFactory, RequestHead, ResponseHead, StreamCallbacks, HeaderMap } from '../filters/filter.ts';
import { FilterStatus } from '../filters/filter.ts';
import type { Reader } from '../config/reader.ts';
import { PEER_ID_HEADER, PEER_METADATA_HEADER, decodePeerHeader, type LocalPeer } from './peer-metadata.ts';
import { telemetryOf } from './proxy-telemetry.ts';
import { typedStructValue } from './typed-struct.ts';

export const PEER_METADATA_FILTER = 'envoy.filters.http.peer_metadata';
export const PEER_METADATA_TYPE = 'type.googleapis.com/io.istio.http.peer_metadata.Config';

interface PeerMetadataConfig {
  readonly downstreamDiscovery: boolean;
  readonly upstreamDiscovery: boolean;
  readonly downstreamPropagation: boolean;
  readonly upstreamPropagation: boolean;
  readonly local: LocalPeer | undefined;
}

function readMethods(r: Reader, key: string): boolean {
  let on = false;
  for (const m of r.objs(key)) {
    const h = m.obj('istio_headers');
    if (h) {
      on = true;
      if (h.bool('skip_external_clusters', false)) h.issues.warn(h.at('skip_external_clusters'), 'peer metadata headers also go to clusters outside the mesh in rig proxy; ignored');
      h.done();
      m.done();
    } else {
      m.issues.error(m.path, 'only istio_headers discovery/propagation is supported (workload_discovery needs the ambient workload API)');
      m.accept(...Object.keys(m.raw));
    }
  }
  return on;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function strip(h: HeaderMap): string | undefined {
  const md = first(h[PEER_METADATA_HEADER]);
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
    if (c.upstreamPropagation && c.local) {
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
    if (c.downstreamPropagation && c.local) {
      head.headers[PEER_ID_HEADER] = c.local.id;
      head.headers[PEER_METADATA_HEADER] = c.local.header;
    }
  }
}

export const peerMetadataFilterFactory: HttpFilterFactory<PeerMetadataConfig> = {
  name: PEER_METADATA_FILTER,
  typeUrls: [],
  compile(r, ctx) {
    const v = typedStructValue(r, [PEER_METADATA_TYPE], PEER_METADATA_FILTER);
    const t = telemetryOf(ctx.stats);
    const config: PeerMetadataConfig = {
      downstreamDiscovery: v ? readMethods(v, 'downstream_discovery') : false,
      upstreamDiscovery: v ? readMethods(v, 'upstream_discovery') : false,
      downstreamPropagation: v ? readMethods(v, 'downstream_propagation') : false,
      upstreamPropagation: v ? readMethods(v, 'upstream_propagation') : false,
      local: t?.local,
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
