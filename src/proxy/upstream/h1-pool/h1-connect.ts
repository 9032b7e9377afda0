// Socket factories of the HTTP/1.1 pool: TCP, or TLS with the cluster's secure context (asked on
// each connection, so rotated certificates apply to new connections), its peer check, exactly the
// given ALPN list, and a kept TLS session of the host offered for resumption (unless max_session_keys is 0).
import net from 'node:net';
import tls from 'node:tls';
import { DEFAULT_BUFFER_LIMIT_BYTES, setBufferLimit } from '../../network/buffer-limit.ts';
import type { HostSessions } from '../../tls/tls-context.ts';
import { connectWithProxyHeader, type ProxyHeaderOptions } from '../upstream-proxy-protocol.ts';
import { connectTarget } from '../../network/pipe-address.ts';

export interface H1TlsOptions {
  /** The current secure context (may throw: the connection attempt fails with that error). */
  readonly secureContext: () => tls.SecureContext;
  readonly servername: string | undefined;
  readonly alpn: readonly string[];
  readonly rejectUnauthorized: boolean;
  readonly checkServerIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;
  /** The host's sessions of the TLS context (undefined: max_session_keys 0, no resumption). */
  readonly sessions: HostSessions | undefined;
}

export interface H1ConnectOptions {
  readonly address: string;
  readonly port: number;
  readonly localAddress?: string;
  /** The cluster's per_connection_buffer_limit_bytes: the socket's watermark (a request body stops being read past it). */
  readonly bufferLimitBytes?: number;
  /** upstream_proxy_protocol: the PROXY header each connection writes first. */
  readonly proxyHeader?: ProxyHeaderOptions;
  readonly tls?: H1TlsOptions;
}

export function h1Connector(o: H1ConnectOptions): (onread: net.OnReadOpts) => net.Socket {
  const t = o.tls;
  const limit = o.bufferLimitBytes ?? DEFAULT_BUFFER_LIMIT_BYTES;
  const target = connectTarget(o.address, o.port);
  const tcp = (onread?: net.OnReadOpts): net.Socket => {
    const opts = { ...target, localAddress: o.localAddress, onread };
    return o.proxyHeader ? connectWithProxyHeader(o.proxyHeader, opts) : net.connect(opts);
  };
  if (!t) return (onread) => setBufferLimit(tcp(onread), limit);
  return (onread) => {
    // First: a rebuilt context (rotated certificate) drops the sessions made under the old one.
    const secureContext = t.secureContext();
    const session = t.sessions?.offer();
    // localAddress reaches the underlying net.connect, and onread is honoured (tls's types leave both out).
    const opts: tls.ConnectionOptions & { localAddress?: string; onread: net.OnReadOpts } = {
      // Behind a PROXY header, TLS runs over the socket that wrote it.
      socket: o.proxyHeader ? tcp() : undefined,
      ...target,
      localAddress: o.localAddress,
      servername: t.servername,
      secureContext,
      rejectUnauthorized: t.rejectUnauthorized,
      checkServerIdentity: t.checkServerIdentity,
      ALPNProtocols: [...t.alpn],
      session,
      onread,
    };
    const socket = setBufferLimit(tls.connect(opts), limit);
    // tls.connect ignores onread over a given socket: its data goes to the same callback.
    if (o.proxyHeader) socket.on('data', (d: Buffer) => onread.callback(d.length, d));
    t.sessions?.keep(socket, session);
    return socket;
  };
}
