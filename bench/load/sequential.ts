// Requests one after the other on one connection (the next is sent when a response ends): the
// load of `npm run bench:instructions`. One request in flight at a time keeps what the proxy does
// per request the same from run to run, however slow it runs (under valgrind, ~50×). HTTP/1.1:
// keep-alive GETs; HTTP/2: a GET stream at a time on one h2c session; gRPC: a unary call at a
// time on one channel. None has a timeout: under valgrind a first request takes seconds.
import net from 'node:net';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { LoadProtocol } from './open-loop.ts';
import { GRPC_PATH } from '../servers/grpc-server.ts';

// The request the round-22 figures in README.md were counted with.
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1');

export interface SequentialClient {
  /** Sends n more requests; rejects on a response other than 200 (1024 bytes for HTTP/2 and gRPC) or a lost connection. */
  run(n: number): Promise<void>;
  close(): void;
}

/** A connection of the protocol to 127.0.0.1:port, for runs of requests one after the other. */
export function sequentialClient(protocol: LoadProtocol, port: number): Promise<SequentialClient> {
  return protocol === 'h1' ? h1Client(port) : protocol === 'h2' ? h2Client(port) : grpcClient(port);
}

/** One keep-alive HTTP/1.1 connection: GETs one after the other. */
async function h1Client(port: number): Promise<SequentialClient> {
  const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  let buf: Buffer = Buffer.alloc(0);
  let run: { n: number; done: number; resolve: () => void; reject: (err: Error) => void } | undefined;
  let broken: Error | undefined;
  const fail = (err: Error) => {
    broken ??= err;
    s.destroy();
    run?.reject(err);
    run = undefined;
  };
  s.on('error', fail);
  s.on('close', () => fail(new Error(`connection closed${run ? ` after ${run.done} of ${run.n} responses` : ''}`)));
  s.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0 || !run) return;
      const head = buf.toString('latin1', 0, end);
      const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!head.startsWith('HTTP/1.1 200 ') || !len) return fail(new Error(`response ${run.done + 1} of ${run.n}: ${head.split('\r\n')[0]} (expected 200 with a Content-Length)`));
      const total = end + 4 + Number(len[1]);
      if (buf.length < total) return;
      buf = buf.subarray(total);
      if (++run.done === run.n) {
        const r = run;
        run = undefined;
        r.resolve();
        return;
      }
      s.write(REQUEST);
    }
  });
  return {
    run: (n) =>
      new Promise<void>((resolve, reject) => {
        if (broken) return reject(broken);
        run = { n, done: 0, resolve, reject };
        s.write(REQUEST);
      }),
    close: () => {
      s.removeAllListeners('close');
      s.end();
    },
  };
}

/** Runs of n requests, each sent when the one before ends (what a request reports after its first report is ignored). */
function runner(send: (done: (err?: Error) => void) => void): (n: number) => Promise<void> {
  return (n) =>
    new Promise<void>((resolve, reject) => {
      let done = 0;
      const one = () => {
        let reported = false;
        send((err) => {
          if (reported) return;
          reported = true;
          if (err) reject(new Error(`request ${done + 1} of ${n}: ${err.message}`));
          else if (++done === n) resolve();
          else one();
        });
      };
      one();
    });
}

/** One h2c session (prior knowledge): GET / streams one after the other, each 200 with 1024 bytes. */
async function h2Client(port: number): Promise<SequentialClient> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => {
      session.off('error', reject);
      resolve();
    });
    session.once('error', reject);
  });
  let broken: Error | undefined;
  session.on('error', (err: Error) => (broken ??= err));
  session.on('close', () => (broken ??= new Error('session closed')));
  const run = runner((done) => {
    if (broken) return done(broken);
    const req = session.request({ ':path': '/' }, { endStream: true });
    let status = 0;
    let bytes = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.on('end', () => done(status === 200 && bytes === 1024 ? undefined : new Error(`answered ${status} with ${bytes} bytes (expected 200, 1024)`)));
    req.on('error', (err: Error) => done(err));
  });
  return { run, close: () => session.close() };
}

/** One gRPC channel (@grpc/grpc-js): unary calls one after the other, each answered with 1024 bytes. */
async function grpcClient(port: number): Promise<SequentialClient> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const request = Buffer.alloc(16, 'q');
  const identity = (b: Buffer) => b;
  const run = runner((done) =>
    client.makeUnaryRequest(GRPC_PATH, identity, identity, request, (err, res) => {
      if (err) done(new Error(`gRPC ${GRPC_PATH}: ${err.message}`));
      else done(res?.length === 1024 ? undefined : new Error(`gRPC ${GRPC_PATH} answered ${res?.length} bytes (expected 1024)`));
    }),
  );
  return { run, close: () => client.close() };
}

/** n requests on a connection of their own. */
export async function sequentialRequests(protocol: LoadProtocol, port: number, n: number): Promise<void> {
  const c = await sequentialClient(protocol, port);
  try {
    await c.run(n);
  } finally {
    c.close();
  }
}
