// The soak's upstreams, all on 127.0.0.1 port 0: HTTP/1.1 and h2c servers answering 1 KB bodies
// (request bodies echoed), a gRPC unary echo, a WebSocket echo and a TCP echo.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { WebSocketServer } from 'ws';

export const KB = Buffer.alloc(1024, 'x');
export const GRPC_PATH = '/soak.Echo/Echo';

const identity = (b: Buffer): Buffer => b;

/** A unary method that carries raw bytes both ways. */
export const echoMethod = { path: GRPC_PATH, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };

export interface Backends {
  h1: number;
  h2: number;
  grpc: number;
  ws: number;
  tcp: number;
  close(): Promise<void>;
}

function answer(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length ? Buffer.concat(chunks) : KB;
    (res as http.ServerResponse).writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
}

function port(s: net.Server): number {
  return (s.address() as AddressInfo).port;
}

async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return port(s);
}

export async function startBackends(): Promise<Backends> {
  const h1 = http.createServer({ keepAliveTimeout: 60_000 }, answer);
  const h2 = http2.createServer({}, answer);
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s) => {
    h2Sessions.add(s);
    s.once('close', () => h2Sessions.delete(s));
  });
  const wsHttp = http.createServer();
  const wss = new WebSocketServer({ server: wsHttp });
  wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  const tcpSockets = new Set<net.Socket>();
  const tcp = net.createServer({ allowHalfOpen: true }, (s) => {
    tcpSockets.add(s);
    s.once('close', () => tcpSockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const server = new grpc.Server();
  server.addService({ echo: echoMethod } as grpc.ServiceDefinition, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
  });
  const grpcPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const b: Backends = {
    h1: await listen(h1),
    h2: await listen(h2),
    grpc: grpcPort,
    ws: await listen(wsHttp),
    tcp: await listen(tcp),
    close: async () => {
      h1.closeAllConnections();
      for (const s of h2Sessions) s.destroy();
      for (const c of wss.clients) c.terminate();
      for (const s of tcpSockets) s.destroy();
      wsHttp.closeAllConnections();
      server.forceShutdown();
      await Promise.all([h1, h2, wsHttp, tcp].map((s) => new Promise((r) => s.close(r))));
    },
  };
  return b;
}
