// Test helpers of the HTTP/1.1 pool's tests: a pool on 127.0.0.1, a request that collects its
// whole response (or error), servers that clean up after themselves.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { H1Pool, type H1PoolOptions } from './h1-pool.ts';
import type { ConnectionGate, UpstreamDispatchOptions } from '../upstream-pool.ts';

export interface Got {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
  trailers?: Record<string, string>;
  error?: Error & { code?: string };
  /** The error came after the response head. */
  midBody?: boolean;
}

export function poolTo(port: number, o: Partial<H1PoolOptions> = {}): H1Pool {
  return new H1Pool({
    authority: `127.0.0.1:${port}`,
    connect: (onread) => net.connect({ host: '127.0.0.1', port, onread }),
    connectTimeoutMs: 2000,
    idleTimeoutMs: 60_000,
    maxRequestsPerConnection: 0,
    ...o,
  });
}

/** At most `max` connections (as a cluster's max_connections over a pool of its one host, with one open). */
export function limitGate(max: number): ConnectionGate {
  let n = 0;
  return { mayOpen: () => n < max, opened: () => void n++, closed: () => void n-- };
}

/** Dispatches and collects; `onController` sees the controller (to pause/abort). */
export function send(pool: { dispatch(o: UpstreamDispatchOptions, h: Dispatcher.DispatchHandler): boolean }, opts: Partial<UpstreamDispatchOptions> = {}, onController?: (c: Dispatcher.DispatchController, ev: 'start' | 'head' | 'data') => void): Promise<Got> {
  return new Promise((resolve) => {
    const got: Got = { status: 0, headers: {}, body: '' };
    const chunks: Buffer[] = [];
    pool.dispatch({ method: 'GET', path: '/', ...opts }, {
      onRequestStart(c) {
        onController?.(c, 'start');
      },
      onResponseStart(c, status, headers) {
        got.status = status;
        got.headers = headers as Record<string, string | string[]>;
        onController?.(c, 'head');
      },
      onResponseData(c, chunk) {
        chunks.push(chunk);
        onController?.(c, 'data');
      },
      onResponseEnd(_c, trailers) {
        got.body = Buffer.concat(chunks).toString();
        got.trailers = trailers as Record<string, string>;
        resolve(got);
      },
      onResponseError(_c, err) {
        got.body = Buffer.concat(chunks).toString();
        got.error = err;
        got.midBody = got.status !== 0;
        resolve(got);
      },
    });
  });
}

/** A raw TCP server; `onRequest` gets each request head (as text) and the socket. */
export interface RawServer {
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  open: Set<net.Socket>;
  heads: string[];
  close(): Promise<void>;
}

export async function rawServer(onRequest: (s: net.Socket, head: string, index: number) => void): Promise<RawServer> {
  const open = new Set<net.Socket>();
  const srv: RawServer = { port: 0, accepted: 0, open, heads: [], close: async () => undefined };
  const server = net.createServer((s) => {
    srv.accepted++;
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        srv.heads.push(head);
        onRequest(s, head, srv.heads.length - 1);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  srv.port = (server.address() as AddressInfo).port;
  srv.close = () =>
    new Promise<void>((r) => {
      for (const s of open) s.destroy();
      server.close(() => r());
    });
  return srv;
}
