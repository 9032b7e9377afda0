// A byte-stream connection to one host of a cluster, for the users that relay bytes rather than
// HTTP requests (tcp_proxy, upgrades and CONNECT): the host's transport socket (TLS, a PROXY
// header first) and the cluster's socket options, with the handshake counted in cluster.*.ssl.* and
// the connection in the host's cx_total / cx_active / cx_connect_fail, as Envoy's pools count theirs.
import net from 'node:net';
import type { ConnectionInfo } from '../filters/filter.ts';
import type { SecretStore } from '../tls/secrets.ts';
import { countUpstreamTls } from '../tls/upstream-tls-stats.ts';
import { setBufferLimit } from '../network/buffer-limit.ts';
import { keepaliveOnConnect } from '../network/tcp-keepalive.ts';
import { upstreamTcpOptions } from './cluster-config.ts';
import { connectWithProxyHeader, proxyHeaderFor } from './upstream-proxy-protocol.ts';
import type { Cluster, UpstreamHost } from './cluster.ts';

/** Connects to `host` of `cluster` for `downstream` (whose addresses a PROXY header names). Throws as net.connect and tls.connect do on bad options. */
export function connectHostStream(cluster: Cluster, host: UpstreamHost, secrets: SecretStore, downstream: ConnectionInfo | undefined): net.Socket {
  const { tls, proxyProtocol } = cluster.transportFor(host);
  const opts = { ...upstreamTcpOptions(cluster.config, host), allowHalfOpen: true };
  // TLS to a pipe runs over a socket connected to its path (the TLS context connects by host and port).
  const tcp = proxyProtocol ? connectWithProxyHeader(proxyHeaderFor(proxyProtocol, downstream, host.proxyProtocolTlvs), opts) : tls && 'path' in opts ? net.connect(opts) : undefined;
  let socket: net.Socket;
  if (tls) {
    const tlsSocket = tls.connect(secrets, host, opts.localAddress, tcp);
    if (cluster.ssl) countUpstreamTls(tlsSocket, cluster.ssl, tls);
    socket = tlsSocket;
  } else socket = tcp ?? net.connect(opts);
  countHostConnection(host, socket, tls ? 'secureConnect' : 'connect');
  return keepaliveOnConnect(setBufferLimit(socket, cluster.config.bufferLimitBytes), cluster.config.tcpKeepalive);
}

/** cx_total now, cx_active while connected (`connected`: the event that says so), cx_connect_fail if it closes before. */
function countHostConnection(host: UpstreamHost, socket: net.Socket, connected: string): void {
  host.cxTotal++;
  let up = false;
  socket.once(connected, () => {
    up = true;
    host.cxActive++;
  });
  socket.once('close', () => {
    if (up) host.cxActive--;
    else host.cxConnectFail++;
  });
}
