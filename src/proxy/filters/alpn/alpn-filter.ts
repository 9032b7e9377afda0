// istio.alpn (Istio's ALPN override filter): for each request, the ALPN the upstream TLS connection
// offers instead of the cluster's alpn_protocols, chosen by the HTTP protocol the router will speak
// upstream (HTTP/1.0, HTTP/1.1, h2). Istio's clients send istio-http/1.0, istio-http/1.1, istio-h2 so
// that a server sidecar sniffing a port without a declared protocol takes its HTTP chain. The
// override goes to the filter state (Envoy's envoy.network.application_protocols), which the router
// hands to the cluster's connection pools (a pool per host and override). Clusters whose metadata
// says istio.alpn_override: "false" (TLS originated to non-mesh servers) keep their own ALPN.
import { ISTIO_ALPN_TYPE } from '../../../envoy/index.ts';
import { APPLICATION_PROTOCOLS_STATE, type Cluster } from '../../upstream/cluster.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';

export const ALPN_FILTER_NAME = 'istio.alpn';

const PROTOCOLS = ['HTTP10', 'HTTP11', 'HTTP2'] as const;
type UpstreamProtocol = (typeof PROTOCOLS)[number];

export interface AlpnFilterConfig {
  readonly overrides: ReadonlyMap<UpstreamProtocol, readonly string[]>;
  readonly clusters: ClusterManager;
}

/** The protocol the router uses towards `cluster` (Envoy's ClusterInfo::upstreamHttpProtocol). */
export function upstreamProtocol(cluster: Cluster, downstreamProtocol: string): UpstreamProtocol {
  if (cluster.config.useDownstreamProtocol) return downstreamProtocol === 'HTTP/2' ? 'HTTP2' : downstreamProtocol === 'HTTP/1.0' ? 'HTTP10' : 'HTTP11';
  return cluster.config.http2 ? 'HTTP2' : 'HTTP11';
}

function overrideDisabled(cluster: Cluster): boolean {
  const md = cluster.config.raw.metadata as { filter_metadata?: { istio?: { alpn_override?: unknown } } } | undefined;
  return md?.filter_metadata?.istio?.alpn_override === 'false';
}

class AlpnFilter implements HttpFilter {
  private readonly c: AlpnFilterConfig;
  private readonly cb: StreamCallbacks;

  constructor(c: AlpnFilterConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(): FilterStatus {
    const info = this.cb.streamInfo;
    const cluster = info.upstreamCluster ? this.c.clusters.get(info.upstreamCluster) : undefined;
    if (!cluster || overrideDisabled(cluster)) return FilterStatus.Continue;
    const alpn = this.c.overrides.get(upstreamProtocol(cluster, info.protocol));
    if (alpn) (info.filterState ??= {})[APPLICATION_PROTOCOLS_STATE] = alpn;
    return FilterStatus.Continue;
  }
}

export const alpnFilterFactory: HttpFilterFactory<AlpnFilterConfig> = {
  name: ALPN_FILTER_NAME,
  typeUrls: [ISTIO_ALPN_TYPE],
  compile(r, ctx) {
    const overrides = new Map<UpstreamProtocol, readonly string[]>();
    for (const o of r.objs('alpn_override')) {
      // proto3 JSON leaves out the default enum value: no upstream_protocol is HTTP10.
      const v = o.get('upstream_protocol') ?? 'HTTP10';
      const p = typeof v === 'number' ? (PROTOCOLS[v] ?? String(v)) : String(v);
      const alpn = o.strs('alpn_override');
      o.done();
      if (!(PROTOCOLS as readonly string[]).includes(p)) {
        ctx.issues.error(o.at('upstream_protocol'), `unknown upstream protocol "${p}" (expected one of ${PROTOCOLS.join(', ')})`);
        continue;
      }
      // Istio keeps the first entry of a protocol; a later one has no effect.
      if (overrides.has(p as UpstreamProtocol)) ctx.issues.warn(o.at('upstream_protocol'), `second override for ${p} ignored (the first one applies)`);
      else if (alpn.length) overrides.set(p as UpstreamProtocol, alpn);
    }
    r.done();
    return { overrides, clusters: ctx.clusters };
  },
  create(c, cb) {
    return new AlpnFilter(c, cb);
  },
};

export function setup(): void {
  registerHttpFilter(alpnFilterFactory);
}
