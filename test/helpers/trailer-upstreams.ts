// An HTTP/1.1 and an HTTP/2 (h2c) upstream on loopback that record each request's body and
// trailers: what the request-trailer tests compare with what a filter left.
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { TestContext } from 'node:test';
import { listenLocal } from './listen.ts';

export interface SeenRequest {
  body: string;
  trailers: Record<string, unknown>;
}

/** Both upstreams' ports, and every request they answered, in order. Closed when the test ends. */
export async function trailerUpstreams(t: TestContext): Promise<{ h1: number; h2: number; seen: SeenRequest[] }> {
  const seen: SeenRequest[] = [];
  const h1 = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen.push({ body, trailers: { ...req.trailers } });
      res.end('ok');
    });
  });
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    let body = '';
    let trailers: Record<string, unknown> = {};
    stream.on('data', (c: Buffer) => (body += c));
    stream.on('trailers', (tr) => (trailers = Object.fromEntries(Object.entries(tr))));
    stream.on('end', () => {
      seen.push({ body, trailers });
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
  });
  return { h1: await listenLocal(h1, t), h2: await listenLocal(h2 as unknown as net.Server, t), seen };
}
