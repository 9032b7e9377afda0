// TCP active health checks (Envoy's tcp_health_check): connect, write `send`, and be healthy once
// every `receive` block has arrived in order; with neither, a successful connect is healthy.
// A connection closed before the blocks arrived fails the host at once. The connection is the
// cluster's (health-check-transport.ts): its tcp_keepalive, its TLS (connected means the handshake
// passed) and PROXY header.
import type net from 'node:net';
import type { Host } from './host.ts';
import { CheckResult, withTimeout, type Prober } from './health-check-prober.ts';
import { compilePayload, compilePayloads, payloadsMatch } from './health-check-payload.ts';
import type { CheckConnector } from './health-check-transport.ts';
import { object, warnUnsupported, type ConfigIssues, type Json } from './lb/config-fields.ts';

export interface TcpCheckConfig {
  send?: Buffer;
  receive: Buffer[];
}

export function compileTcpCheck(o: Json, path: string, issues: ConfigIssues): TcpCheckConfig {
  warnUnsupported(o, ['send', 'receive'], path, issues);
  return {
    send: compilePayload(object(o.send, `${path}.send`, issues), `${path}.send`, issues),
    receive: compilePayloads(o.receive, `${path}.receive`, issues),
  };
}

export class TcpProber implements Prober {
  readonly #config: TcpCheckConfig;
  readonly #connector: CheckConnector;

  constructor(config: TcpCheckConfig, connector: CheckConnector) {
    this.#config = config;
    this.#connector = connector;
  }

  probe(host: Host, timeoutMs: number): Promise<CheckResult> {
    const c = this.#config;
    let socket: net.Socket | undefined;
    return withTimeout(timeoutMs, () => socket?.destroy(), (done) => {
      const finish = (r: CheckResult) => {
        done(r);
        socket?.destroy();
      };
      let ready: string;
      try {
        ({ socket, ready } = this.#connector.connect(host));
      } catch {
        return finish(CheckResult.NetworkFailure);
      }
      let data = Buffer.alloc(0);
      socket.on(ready, () => {
        if (c.send) socket?.write(c.send);
        if (c.receive.length === 0) finish(CheckResult.Success);
      });
      socket.on('data', (d: Buffer) => {
        data = Buffer.concat([data, d]);
        if (payloadsMatch(data, c.receive)) finish(CheckResult.Success);
      });
      socket.on('end', () => finish(CheckResult.ActiveFailure));
      socket.on('error', () => finish(CheckResult.NetworkFailure));
    });
  }

  forget(): void {}

  close(): void {}
}
