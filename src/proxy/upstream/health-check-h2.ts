// The HTTP/2 sessions of HTTP/2 and gRPC health checks: one per host, kept between checks
// (Envoy's reuse_connection), on a connection from the checker's CheckConnector, so a session
// carries the cluster's transport socket, upstream_bind_config and tcp_keepalive. The codec is
// HTTP/2 whatever ALPN selected, as Envoy's comes from the config.
import http2 from 'node:http2';
import type { Host } from './host.ts';
import type { CheckConnector } from './health-check-transport.ts';
import { formatIpPort } from '../network/ip-port.ts';

export class CheckSessions {
  readonly #connector: CheckConnector;
  readonly #sessions = new Map<Host, http2.ClientHttp2Session>();

  constructor(connector: CheckConnector) {
    this.#connector = connector;
  }

  /** The host's session, connecting a new one when there is none. Throws when its TLS secrets are not there yet. */
  get(host: Host): http2.ClientHttp2Session {
    let s = this.#sessions.get(host);
    if (s && !s.closed && !s.destroyed) return s;
    const { socket, secure } = this.#connector.connect(host);
    // http2 starts on 'secureConnect' for a TLS socket, on 'connect' otherwise.
    s = http2.connect(`${secure ? 'https' : 'http'}://${formatIpPort(host.address, host.port)}`, { createConnection: () => socket });
    s.on('error', () => this.#sessions.delete(host));
    s.on('close', () => {
      if (this.#sessions.get(host) === s) this.#sessions.delete(host);
    });
    s.unref();
    this.#sessions.set(host, s);
    return s;
  }

  forget(host: Host): void {
    this.#sessions.get(host)?.destroy();
    this.#sessions.delete(host);
  }

  close(): void {
    for (const s of this.#sessions.values()) s.destroy();
    this.#sessions.clear();
  }
}
