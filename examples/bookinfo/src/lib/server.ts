// The HTTP server every Bookinfo service runs: listens on $PORT (default 9080) at $HOST
// (default 0.0.0.0; `rig up` sets 127.0.0.1 so that only the sidecar reaches the app), logs one
// line per request, and closes gracefully on SIGTERM/SIGINT.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function readBody(req: IncomingMessage, limit = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function serve(name: string, handler: Handler): http.Server {
  const port = Number(process.env.PORT ?? 9080);
  const host = process.env.HOST ?? '0.0.0.0';
  const server = http.createServer((req, res) => {
    const started = Date.now();
    res.on('finish', () => {
      if (process.env.BOOKINFO_ACCESS_LOG !== 'off') {
        process.stdout.write(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - started}ms\n`);
      }
    });
    const url = new URL(req.url ?? '/', 'http://localhost');
    Promise.resolve(handler(req, res, url)).catch((err: unknown) => {
      process.stderr.write(`${name}: ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.on('error', (err: NodeJS.ErrnoException) => {
    process.stderr.write(`${name}: cannot listen on ${host}:${port}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(port, host, () => process.stdout.write(`${name} listening on ${host}:${port}\n`));
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return server;
}

/** `/<prefix>/<id>` → the numeric id, or undefined when the path does not match or the id is not a number. */
export function productId(pathname: string, prefix: string): { matched: boolean; id?: number } {
  const m = new RegExp(`^/${prefix}/([^/]+)$`).exec(pathname);
  if (!m) return { matched: false };
  const id = /^\d+$/.test(m[1]) ? Number(m[1]) : undefined;
  return { matched: true, id };
}
