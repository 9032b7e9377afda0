// How health check connections are opened (Envoy's createHealthCheckConnection): with the transport
// socket the cluster's traffic to the host uses, i.e. the transport_socket_matches entry the
// endpoint's metadata selects, or, with the check's transport_socket_match_criteria, the entry
// those criteria select (the endpoint's metadata is not looked at then), else the cluster's
// transport_socket. Over TLS that is the same UpstreamTlsContext (SDS certificates, trust bundle,
// SAN check, SNI, resumed sessions); behind upstream_proxy_protocol the PROXY header comes first
// (v1 with the connection's own addresses, v2 LOCAL: no downstream). The ALPN offered is the
// check's tls_options.alpn_protocols when not empty, else the context's alpn_protocols, else none:
// Envoy adds no h2 / http/1.1 fallback for checks (that belongs to its HTTP connection pools).
// Like every upstream connection of the cluster, a check connection binds upstream_bind_config's
// source address and gets the cluster's tcp_keepalive.
import net from 'node:net';
import type { Host } from './host.ts';
import { upstreamTcpOptions } from './cluster-config.ts';
import type { SecretStore } from '../tls/secrets.ts';
import type { TlsContext } from '../tls/tls-context.ts';
import { keepaliveOnConnect, type TcpKeepalive } from '../network/tcp-keepalive.ts';
import { connectWithProxyHeader, proxyHeaderFor, type ProxyHeaderOptions, type UpstreamTransport } from './upstream-proxy-protocol.ts';

/** Endpoint metadata namespace transport_socket_matches look at. */
const MATCH_NAMESPACE = 'envoy.transport_socket_match';

/** What the checker knows of its cluster's transport sockets (a Cluster). */
export interface CheckTransportSource {
  transportFor(host: Pick<Host, 'metadata'>): UpstreamTransport;
  readonly secrets: SecretStore;
}

export interface CheckConnectorOptions {
  /** Undefined: plaintext, no PROXY header (a checker made without a cluster). */
  readonly source?: CheckTransportSource;
  /** HealthCheck.transport_socket_match_criteria. */
  readonly matchCriteria?: Readonly<Record<string, unknown>>;
  /** HealthCheck.tls_options.alpn_protocols (empty: the TLS context's). */
  readonly alpn?: readonly string[];
  /** The cluster's upstream_connection_options.tcp_keepalive. */
  readonly keepalive?: TcpKeepalive;
  /** The cluster's upstream_bind_config.source_address. */
  readonly sourceAddress?: string;
}

export interface CheckConnection {
  readonly socket: net.Socket;
  /** The event after which the connection carries the check: 'connect', or 'secureConnect' over TLS. */
  readonly ready: 'connect' | 'secureConnect';
  readonly secure: boolean;
}

interface HostTransport {
  readonly tls: TlsContext | undefined;
  readonly proxyHeader: ProxyHeaderOptions | undefined;
}

export class CheckConnector {
  readonly #source: CheckTransportSource | undefined;
  readonly #matchOn: Pick<Host, 'metadata'> | undefined;
  readonly #alpn: readonly string[] | undefined;
  readonly #keepalive: TcpKeepalive | undefined;
  readonly #bind: { readonly sourceAddress: string | undefined };

  constructor(o: CheckConnectorOptions = {}) {
    this.#source = o.source;
    this.#matchOn = o.matchCriteria && { metadata: { [MATCH_NAMESPACE]: { ...o.matchCriteria } } };
    this.#alpn = o.alpn?.length ? o.alpn : undefined;
    this.#keepalive = o.keepalive;
    this.#bind = { sourceAddress: o.sourceAddress };
  }

  #transport(host: Host): HostTransport {
    if (!this.#source) return { tls: undefined, proxyHeader: undefined };
    const t = this.#source.transportFor(this.#matchOn ?? host);
    return { tls: t.tls, proxyHeader: t.proxyProtocol && proxyHeaderFor(t.proxyProtocol, undefined) };
  }

  /** A new connection to `host`. Throws when a TLS secret the context needs is not there yet. */
  connect(host: Host): CheckConnection {
    const { tls: ctx, proxyHeader } = this.#transport(host);
    const opts = upstreamTcpOptions(this.#bind, host);
    // TLS to a pipe runs over a socket connected to its path (the TLS context connects by host and port).
    const tcp = proxyHeader ? keepaliveOnConnect(connectWithProxyHeader(proxyHeader, opts), this.#keepalive) : ctx && 'path' in opts ? net.connect(opts) : undefined;
    if (!ctx) return { socket: tcp ?? keepaliveOnConnect(net.connect(opts), this.#keepalive), ready: 'connect', secure: false };
    try {
      const socket = ctx.connect(this.#source!.secrets, host, opts.localAddress, tcp, this.#alpn);
      if (!tcp) return { socket: keepaliveOnConnect(socket, this.#keepalive), ready: 'secureConnect', secure: true };
      tcp.once('error', (e) => socket.destroy(e));
      return { socket, ready: 'secureConnect', secure: true };
    } catch (e) {
      tcp?.destroy();
      throw e;
    }
  }
}
