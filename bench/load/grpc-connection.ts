// One gRPC channel (@grpc/grpc-js, its own HTTP/2 connection) for the open-loop generator:
// each due request is a unary call started at once.
import * as grpc from '@grpc/grpc-js';
import type { LoadConnection, Recorder } from './recorder.ts';
import { GRPC_PATH } from '../servers/grpc-server.ts';

const REQUEST = Buffer.alloc(16, 'q');
const identity = (b: Buffer) => b;

export class GrpcConnection implements LoadConnection {
  readonly #client: grpc.Client;
  readonly #rec: Recorder;

  constructor(host: string, port: number, rec: Recorder) {
    // A local subchannel pool gives every client its own connection, as 16 separate callers have.
    this.#client = new grpc.Client(`${host}:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    this.#rec = rec;
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve()));
    });
  }

  send(dueMs: number): void {
    const rec = this.#rec;
    rec.outstanding++;
    const sent = performance.now();
    rec.sent(dueMs, sent, true);
    this.#client.makeUnaryRequest(GRPC_PATH, identity, identity, REQUEST, (err) => {
      if (err) rec.failed(dueMs, `grpc ${err.code}`);
      else rec.done(dueMs, sent, performance.now());
    });
  }

  close(): void {
    this.#client.close();
  }
}
