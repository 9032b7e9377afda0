// One request through a topology before measuring it: proves the path works end to end (and
// waits for proxies that listen before their config is applied).
import http from 'node:http';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { LoadProtocol } from './open-loop.ts';
import { GRPC_PATH } from '../servers/grpc-server.ts';

function probeH1(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      res.on('end', () => (res.statusCode === 200 && n === 1024 ? resolve() : reject(new Error(`HTTP/1.1 GET / answered ${res.statusCode} with ${n} bytes (expected 200, 1024)`))));
    });
    req.setTimeout(3000, () => req.destroy(new Error('HTTP/1.1 GET / timed out after 3 s')));
    req.on('error', reject);
  });
}

function probeH2(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    const fail = (err: Error) => {
      s.destroy();
      reject(err);
    };
    s.on('error', fail);
    s.setTimeout(3000, () => fail(new Error('HTTP/2 GET / timed out after 3 s')));
    const req = s.request({ ':path': '/' });
    let status = 0;
    let n = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => {
      s.close();
      if (status === 200 && n === 1024) resolve();
      else reject(new Error(`HTTP/2 GET / answered ${status} with ${n} bytes (expected 200, 1024)`));
    });
    req.on('error', fail);
  });
}

function probeGrpc(port: number): Promise<void> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const id = (b: Buffer) => b;
  return new Promise<void>((resolve, reject) => {
    client.makeUnaryRequest(GRPC_PATH, id, id, Buffer.alloc(16), { deadline: Date.now() + 3000 }, (err, res) => {
      if (err) reject(new Error(`gRPC ${GRPC_PATH}: ${err.message}`));
      else if (res?.length !== 1024) reject(new Error(`gRPC ${GRPC_PATH} answered ${res?.length} bytes (expected 1024)`));
      else resolve();
    });
  }).finally(() => client.close());
}

/** Retries until the request succeeds or timeoutMs passes; then throws the last error. */
export async function probe(protocol: LoadProtocol, port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await (protocol === 'h1' ? probeH1(port) : protocol === 'h2' ? probeH2(port) : probeGrpc(port));
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
