// rig up's own probes of the processes it runs (a sidecar's /healthz/ready, a gateway's ports):
// an HTTP GET that answers 200..399, or a TCP connect. A replica's readiness probe is its sidecar's.
import http from 'node:http';
import net from 'node:net';

export type Probe = () => Promise<boolean>;

export function httpProbe(host: string, port: number, path: string, timeoutMs = 1000): Probe {
  return () =>
    new Promise((resolve) => {
      const req = http.get({ host, port, path, timeout: timeoutMs, agent: false }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(false));
    });
}

export function tcpProbe(host: string, port: number, timeoutMs = 1000): Probe {
  return () =>
    new Promise((resolve) => {
      const sock = net.connect({ host, port });
      const done = (ok: boolean) => {
        sock.destroy();
        resolve(ok);
      };
      sock.setTimeout(timeoutMs, () => done(false));
      sock.once('connect', () => done(true));
      sock.once('error', () => done(false));
    });
}

/** Ready when every probe is. */
export function allOf(probes: Probe[]): Probe {
  return async () => (await Promise.all(probes.map((p) => p()))).every(Boolean);
}
