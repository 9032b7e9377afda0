// The TLS connector of an HTTP/2 (undici) connection pool whose requests carry an ALPN override
// (istio.alpn). undici's own connector always offers its ALPN (http/1.1, h2), so it cannot send
// the override; this one offers exactly the given list. As in Envoy, the codec comes from the
// cluster, not from the negotiated protocol: an h2 pool speaks h2 whatever the server selected
// (istio-h2, or none). A kept TLS session of the host is offered (the TLS context's sessions;
// a rotated certificate starts over). HTTP/1.1 pools connect through h1-pool/h1-connect.ts.
import net from 'node:net';
import tls from 'node:tls';
import type { buildConnector as Connector } from 'undici';
import type { HostSessions, TlsContext } from '../tls/tls-context.ts';
import { countUpstreamTls, type SslStats } from '../tls/upstream-tls-stats.ts';
import { connectWithProxyHeader, type ProxyHeaderOptions } from './upstream-proxy-protocol.ts';

export interface AlpnConnectorOptions {
  readonly alpn: readonly string[];
  readonly timeoutMs: number;
  readonly servername: string | undefined;
  readonly secureContext: tls.SecureContext;
  readonly rejectUnauthorized: boolean;
  readonly checkServerIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;
  readonly localAddress?: string;
  /** The host's sessions of the TLS context (undefined: max_session_keys 0, no resumption). */
  readonly sessions: HostSessions | undefined;
  /** A pipe host's socket path (network/pipe-address.ts): connected instead of the origin's host and port. */
  readonly path?: string;
  /** upstream_proxy_protocol: the PROXY header to write before the TLS handshake. */
  readonly proxyHeader?: ProxyHeaderOptions;
  /** The cluster's ssl.* stats, and the TLS context the connections are made with. */
  readonly ssl?: { readonly stats: SslStats; readonly context: TlsContext };
}

export function alpnConnector(o: AlpnConnectorOptions): Connector.connector {
  return (opts, cb) => {
    const host = opts.hostname.startsWith('[') ? opts.hostname.slice(1, -1) : opts.hostname;
    const session = o.sessions?.offer();
    const port = Number(opts.port) || 443;
    const localAddress = opts.localAddress ?? o.localAddress;
    const socket = tls.connect({
      socket: o.proxyHeader ? connectWithProxyHeader(o.proxyHeader, o.path ? { path: o.path } : { host, port, localAddress }) : o.path ? net.connect({ path: o.path }) : undefined,
      host,
      port,
      servername: opts.servername ?? o.servername,
      secureContext: o.secureContext,
      rejectUnauthorized: o.rejectUnauthorized,
      checkServerIdentity: o.checkServerIdentity,
      ALPNProtocols: [...o.alpn],
      localAddress,
      session,
    } as tls.ConnectionOptions);
    o.sessions?.keep(socket, session);
    if (o.ssl) countUpstreamTls(socket, o.ssl.stats, o.ssl.context);
    socket.setNoDelay(true);
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('error', finish);
      if (err) {
        socket.destroy();
        cb(err, null);
        return;
      }
      // undici picks its codec from alpnProtocol.
      (socket as { alpnProtocol: string | false | null }).alpnProtocol = 'h2';
      cb(null, socket);
    };
    const timer = setTimeout(() => finish(Object.assign(new Error(`connect timeout after ${o.timeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' })), o.timeoutMs || 10_000);
    socket.once('secureConnect', () => finish(null));
    socket.once('error', finish);
  };
}
