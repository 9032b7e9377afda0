// The load of `npm run bench:instructions` (bench/load/sequential.ts) against real servers of each
// protocol: requests go one at a time on one connection, and an answer that is not the
// benchmark's (a status other than 200, a body other than 1024 bytes) rejects the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { sequentialClient } from '../../bench/load/sequential.ts';
import { ECHO_SERVICE } from '../../bench/servers/grpc-server.ts';

const BODY = Buffer.alloc(1024, 'x');

interface Seen {
  /** Requests in flight at once, at most. */
  maxInFlight: number;
  requests: number;
  /** Connections (or HTTP/2 sessions) the requests came on. */
  connections: Set<unknown>;
}

function tracker(): { seen: Seen; start: (conn: unknown) => () => void } {
  const seen: Seen = { maxInFlight: 0, requests: 0, connections: new Set() };
  let inFlight = 0;
  return {
    seen,
    start: (conn) => {
      seen.requests++;
      seen.connections.add(conn);
      seen.maxInFlight = Math.max(seen.maxInFlight, ++inFlight);
      return () => inFlight--;
    },
  };
}

type After = { after: (fn: () => unknown) => void };

/** An answer: 200 with BODY, or, for requests numbered in `bad`, the status or body given there. */
type Answer = { status: number; body: Buffer };
const answer = (n: number, bad: Map<number, Answer>): Answer => bad.get(n) ?? { status: 200, body: BODY };

async function h1Server(t: After, bad = new Map<number, Answer>()): Promise<{ port: number; seen: Seen }> {
  const { seen, start } = tracker();
  const srv = http.createServer((req, res) => {
    const done = start(req.socket);
    const a = answer(seen.requests, bad);
    // A response a little later, so that a client sending ahead would show two in flight.
    setTimeout(() => {
      done();
      res.writeHead(a.status, { 'content-length': a.body.length });
      res.end(a.body);
    }, 2);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    srv.closeAllConnections();
    return new Promise((r) => srv.close(r));
  });
  return { port: (srv.address() as net.AddressInfo).port, seen };
}

async function h2Server(t: After, bad = new Map<number, Answer>()): Promise<{ port: number; seen: Seen }> {
  const { seen, start } = tracker();
  const srv = http2.createServer();
  srv.on('stream', (stream) => {
    const done = start(stream.session);
    const a = answer(seen.requests, bad);
    setTimeout(() => {
      done();
      stream.respond({ ':status': a.status });
      stream.end(a.body);
    }, 2);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  srv.on('session', (s) => sessions.add(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sessions) s.destroy();
    return new Promise((r) => srv.close(r));
  });
  return { port: (srv.address() as net.AddressInfo).port, seen };
}

async function grpcServer(t: After, reply = BODY): Promise<{ port: number; seen: Seen }> {
  const { seen, start } = tracker();
  const srv = new grpc.Server();
  srv.addService(ECHO_SERVICE, {
    get: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const done = start(call.getPeer());
      setTimeout(() => {
        done();
        cb(null, reply);
      }, 2);
    },
  });
  const port = await new Promise<number>((resolve, reject) => srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => srv.forceShutdown());
  return { port, seen };
}

for (const [protocol, serve] of [
  ['h1', h1Server],
  ['h2', h2Server],
  ['grpc', grpcServer],
] as const) {
  test(`${protocol}: runs of requests go one at a time on one connection`, async (t) => {
    const { port, seen } = await serve(t);
    const client = await sequentialClient(protocol, port);
    try {
      await client.run(1);
      await client.run(25);
      await client.run(30);
    } finally {
      client.close();
    }
    assert.equal(seen.requests, 56);
    assert.equal(seen.maxInFlight, 1);
    assert.equal(seen.connections.size, 1);
  });
}

test('h1 and h2: a status other than 200 rejects the run and names the request', async (t) => {
  const bad = new Map([[3, { status: 503, body: BODY }]]);
  for (const [protocol, serve] of [
    ['h1', h1Server],
    ['h2', h2Server],
  ] as const) {
    const { port } = await serve(t, bad);
    const client = await sequentialClient(protocol, port);
    try {
      await assert.rejects(client.run(5), protocol === 'h1' ? /response 3 of 5: HTTP\/1\.1 503/ : /request 3 of 5: answered 503 with 1024 bytes/);
    } finally {
      client.close();
    }
  }
});

test('h2: a body other than 1024 bytes rejects the run', async (t) => {
  const { port } = await h2Server(t, new Map([[2, { status: 200, body: BODY.subarray(0, 10) }]]));
  const client = await sequentialClient('h2', port);
  try {
    await assert.rejects(client.run(3), /request 2 of 3: answered 200 with 10 bytes/);
  } finally {
    client.close();
  }
});

test('grpc: a reply other than 1024 bytes rejects the run; no server rejects the connection', async (t) => {
  const { port } = await grpcServer(t, Buffer.alloc(7));
  const client = await sequentialClient('grpc', port);
  try {
    await assert.rejects(client.run(2), /request 1 of 2: gRPC \/rig\.bench\.Echo\/Get answered 7 bytes/);
  } finally {
    client.close();
  }
  await assert.rejects(sequentialClient('h2', 1), /ECONNREFUSED/);
});
