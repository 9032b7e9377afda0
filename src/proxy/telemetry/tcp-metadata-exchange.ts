// Istio's TCP metadata exchange (istio.metadata_exchange) between sidecars, on mTLS connections
// whose ALPN negotiated `istio-peer-exchange`: each side writes its preamble
// (peer-exchange-preamble.ts) and reads the other's before relaying bytes.
//  - network filter (inbound TCP chains, before istio.stats): writes this proxy's preamble, reads
//    the client's, and hands the peer to the later filters (DownstreamConnection.peerMetadata);
//  - upstream filter (Cluster.filters, run by tcp_proxy through a cluster hook): writes, then reads
//    the server's preamble into StreamInfo.upstreamPeer.
// Config: a TypedStruct with type_url type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange
// and value { protocol: "istio-peer-exchange" }. Without that ALPN (a peer outside the mesh, a
// plaintext hop) nothing is written and the connection goes on unchanged.
import type net from 'node:net';
import type { Reader } from '../config/reader.ts';
import { Reader as ConfigReader } from '../config/reader.ts';
import type { DownstreamConnection, NetworkFilter, NetworkFilterFactory } from '../network/network-filter.ts';
import type { ClusterHook, ClusterHookFactory } from '../upstream/cluster-hooks.ts';
import type { Stat, Stats } from '../stats/stats.ts';
import type { StreamInfo } from '../stream-info.ts';
import { encodePreamble, readPreamble, type PreambleResult } from './peer-exchange-preamble.ts';
import { telemetryOf } from './proxy-telemetry.ts';
import { PEER_EXCHANGE_ALPN, type LocalPeer } from './peer-metadata.ts';
import { typedStructValue } from './typed-struct.ts';

export const METADATA_EXCHANGE_FILTER = 'istio.metadata_exchange';
export const METADATA_EXCHANGE_TYPE = 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange';
/** How long a side waits for the peer's preamble (an Envoy client writes it with its first bytes only). */
export const PREAMBLE_TIMEOUT_MS = 1000;

interface ExchangeStats {
  readonly alpnFound: Stat;
  readonly alpnNotFound: Stat;
  readonly metadataAdded: Stat;
  readonly initialHeaderNotFound: Stat;
  readonly headerNotFound: Stat;
}

function exchangeStats(stats: Stats): ExchangeStats {
  const p = 'metadata_exchange.';
  return {
    alpnFound: stats.counter(p + 'alpn_protocol_found'),
    alpnNotFound: stats.counter(p + 'alpn_protocol_not_found'),
    metadataAdded: stats.counter(p + 'metadata_added'),
    initialHeaderNotFound: stats.counter(p + 'initial_header_not_found'),
    headerNotFound: stats.counter(p + 'header_not_found'),
  };
}

interface ExchangeConfig {
  readonly protocol: string;
  readonly local: LocalPeer;
  readonly preamble: Buffer;
  readonly stats: ExchangeStats;
}

function compileConfig(r: Reader, local: LocalPeer, stats: Stats): ExchangeConfig {
  const v = typedStructValue(r, [METADATA_EXCHANGE_TYPE], METADATA_EXCHANGE_FILTER);
  const protocol = v?.str('protocol') || PEER_EXCHANGE_ALPN;
  if (v?.has('enable_discovery') && v.bool('enable_discovery', false)) v.issues.error(v.at('enable_discovery'), 'enable_discovery needs the ambient workload API, which rig proxy does not have; remove it');
  if (v?.has('additional_labels')) v.issues.warn(v.at('additional_labels'), 'additional_labels are not exchanged (only with enable_discovery in Istio); ignored');
  v?.accept('additional_labels');
  v?.done();
  return { protocol, local, preamble: encodePreamble(local.metadata, local.id), stats: exchangeStats(stats) };
}

/** Writes this side's preamble, reads the peer's; counts the outcome. */
async function exchange(c: ExchangeConfig, socket: net.Socket): Promise<PreambleResult> {
  c.stats.alpnFound.value++;
  socket.write(c.preamble);
  c.stats.metadataAdded.value++;
  const r = await readPreamble(socket, PREAMBLE_TIMEOUT_MS);
  if (r.kind === 'absent' || r.kind === 'timeout') c.stats.initialHeaderNotFound.value++;
  else if (r.kind === 'invalid') c.stats.headerNotFound.value++;
  return r;
}

class DownstreamExchange implements NetworkFilter {
  private readonly c: ExchangeConfig;

  constructor(c: ExchangeConfig) {
    this.c = c;
  }

  onConnection(conn: DownstreamConnection): boolean | Promise<boolean> {
    if (conn.alpn !== this.c.protocol) {
      this.c.stats.alpnNotFound.value++;
      return true;
    }
    return exchange(this.c, conn.socket).then((r) => {
      if (r.kind === 'closed') {
        conn.socket.destroy();
        return false;
      }
      if (r.kind === 'peer') conn.peerMetadata = r.peer.metadata;
      return true;
    });
  }
}

export const tcpMetadataExchangeFactory: NetworkFilterFactory = {
  name: METADATA_EXCHANGE_FILTER,
  typeUrls: [],
  terminal: false,
  compile(r, ctx) {
    const t = telemetryOf(ctx.proxy.stats);
    const config = t ? compileConfig(r, t.local, ctx.proxy.stats) : undefined;
    if (!config) {
      ctx.issues.error(r.path, `${METADATA_EXCHANGE_FILTER}: this proxy has no telemetry state (ProxyRuntime attaches it)`);
      return { onConnection: () => true };
    }
    return new DownstreamExchange(config);
  },
};

class UpstreamExchange implements ClusterHook {
  private readonly c: ExchangeConfig;

  constructor(c: ExchangeConfig) {
    this.c = c;
  }

  async onUpstreamConnection(socket: net.Socket, info: StreamInfo): Promise<void> {
    const alpn = (socket as net.Socket & { alpnProtocol?: string | false }).alpnProtocol;
    if (alpn !== this.c.protocol) {
      this.c.stats.alpnNotFound.value++;
      return;
    }
    const r = await exchange(this.c, socket);
    if (r.kind === 'closed') throw new Error('upstream closed during the metadata exchange');
    if (r.kind === 'peer') info.upstreamPeer = { principal: info.upstreamPeer?.principal, metadata: r.peer.metadata };
  }

  stop(): void {}
}

/** Cluster.filters: istio.metadata_exchange is the only upstream network filter rig proxy runs. */
export const upstreamMetadataExchangeFactory: ClusterHookFactory = {
  name: 'cluster.filters',
  create(cluster, issues) {
    const filters = cluster.config.raw.filters;
    if (filters === undefined) return undefined;
    const path = `cluster ${cluster.name}: filters`;
    if (!Array.isArray(filters)) {
      issues.error(path, 'expected a list');
      return undefined;
    }
    let hook: UpstreamExchange | undefined;
    filters.forEach((f: unknown, i) => {
      const r = new ConfigReader(f, `${path}[${i}]`, issues);
      const name = r.str('name');
      if (name !== METADATA_EXCHANGE_FILTER) {
        issues.error(r.at('name'), `upstream network filter "${name}" is not supported (rig proxy runs ${METADATA_EXCHANGE_FILTER} only)`);
        r.accept(...Object.keys(r.raw));
        return;
      }
      const tc = r.obj('typed_config');
      r.done();
      const t = telemetryOf(cluster.stats);
      if (!tc || !t) {
        issues.error(r.at('typed_config'), tc ? 'this proxy has no telemetry state' : 'missing typed_config');
        return;
      }
      hook = new UpstreamExchange(compileConfig(tc, t.local, cluster.stats));
    });
    return hook;
  },
};
