// The soak's traffic: workers that each repeat one kind of exchange through the proxy until told to
// stop, recycling their connections now and then so that connection set-up and teardown are part
// of the mix (new keep-alive agents, HTTP/2 sessions, gRPC channels, WebSockets, TCP connections).
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { GRPC_PATH, KB } from './soak-backends.ts';

export interface Tally {
  ok: number;
  failed: number;
  lastError?: string;
}

export type Kind = 'http1' | 'http1-close' | 'http2' | 'grpc' | 'websocket' | 'tcp';

export interface Mix {
  /** Workers per kind (each runs one exchange at a time). */
  workers: Record<Kind, number>;
  /** Pause between two exchanges of one worker, ms. */
  pauseMs: number;
  /** Exchanges before a worker replaces its connection / agent / session / channel. */
  recycleEvery: number;
}

export const DEFAULT_MIX: Mix = {
  workers: { http1: 4, 'http1-close': 1, http2: 2, grpc: 2, websocket: 1, tcp: 1 },
  pauseMs: 5,
  recycleEvery: 200,
};

const POST_BODY = Buffer.alloc(4096, 'p');

function h1Request(port: number, agent: http.Agent | false, i: number): Promise<void> {
  const post = i % 4 === 0;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/h1/${i}`, method: post ? 'POST' : 'GET', agent }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => (res.statusCode === 200 && n === (post ? POST_BODY.length : KB.length) ? resolve() : reject(new Error(`http1 status ${res.statusCode}, ${n} bytes`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(post ? POST_BODY : undefined);
  });
}

function h2Request(session: http2.ClientHttp2Session, i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':path': `/h2/${i}`, ':method': 'GET' });
    let status = 0;
    let n = 0;
    s.on('response', (h) => (status = Number(h[':status'])));
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => (status === 200 && n === KB.length ? resolve() : reject(new Error(`http2 status ${status}, ${n} bytes`))));
    s.on('error', reject);
    s.end();
  });
}

function grpcCall(client: grpc.Client, i: number): Promise<void> {
  const msg = Buffer.from(`soak ${i} `.padEnd(512, '.'));
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      GRPC_PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      msg,
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (err, res) => (err ? reject(err) : res?.equals(msg) ? resolve() : reject(new Error('grpc echo mismatch'))),
    );
  });
}

function wsSession(port: number, messages: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    let got = 0;
    ws.on('open', () => ws.send(`m${got}`));
    ws.on('message', (m) => {
      if (String(m) !== `m${got}`) return reject(new Error(`websocket echo mismatch: ${String(m)}`));
      if (++got === messages) ws.close();
      else ws.send(`m${got}`);
    });
    ws.on('close', () => (got === messages ? resolve() : reject(new Error(`websocket closed after ${got} messages`))));
    ws.on('error', reject);
  });
}

function tcpSession(port: number, rounds: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let round = 0;
    let buf = '';
    s.on('connect', () => s.write(`r${round}\n`));
    s.on('data', (c: Buffer) => {
      buf += c.toString();
      if (!buf.endsWith('\n')) return;
      if (buf !== `r${round}\n`) return reject(new Error(`tcp echo mismatch: ${buf}`));
      buf = '';
      if (++round === rounds) s.end();
      else s.write(`r${round}\n`);
    });
    s.on('end', () => s.end());
    s.on('close', () => (round === rounds ? resolve() : reject(new Error(`tcp closed after ${round} rounds`))));
    s.on('error', reject);
  });
}

export interface Ports {
  http: number;
  tcp: number;
}

/** Runs the mix until `stop` resolves; resolves with a tally per kind once every worker stopped. */
export async function runTraffic(ports: Ports, mix: Mix, stop: { stopped: boolean }): Promise<Record<Kind, Tally>> {
  const tallies = {} as Record<Kind, Tally>;
  const workers: Promise<void>[] = [];
  for (const kind of Object.keys(mix.workers) as Kind[]) {
    const t: Tally = (tallies[kind] = { ok: 0, failed: 0 });
    for (let w = 0; w < mix.workers[kind]; w++) workers.push(worker(kind, ports, mix, stop, t));
  }
  await Promise.all(workers);
  return tallies;
}

async function worker(kind: Kind, ports: Ports, mix: Mix, stop: { stopped: boolean }, t: Tally): Promise<void> {
  let agent: http.Agent | undefined;
  let session: http2.ClientHttp2Session | undefined;
  let client: grpc.Client | undefined;
  const release = (): void => {
    agent?.destroy();
    session?.close();
    client?.close();
    agent = session = client = undefined;
  };
  for (let i = 0; !stop.stopped; i++) {
    if (i % mix.recycleEvery === 0) release();
    try {
      switch (kind) {
        case 'http1':
          await h1Request(ports.http, (agent ??= new http.Agent({ keepAlive: true, maxSockets: 1 })), i);
          break;
        case 'http1-close':
          await h1Request(ports.http, false, i);
          break;
        case 'http2':
          if (!session || session.destroyed) {
            session = http2.connect(`http://127.0.0.1:${ports.http}`);
            session.on('error', () => undefined);
          }
          await h2Request(session, i);
          break;
        case 'grpc':
          client ??= new grpc.Client(`127.0.0.1:${ports.http}`, grpc.credentials.createInsecure());
          await grpcCall(client, i);
          break;
        case 'websocket':
          await wsSession(ports.http, 20);
          break;
        case 'tcp':
          await tcpSession(ports.tcp, 10);
          break;
      }
      t.ok++;
    } catch (e) {
      t.failed++;
      t.lastError = (e as Error).message;
      release();
    }
    await sleep(mix.pauseMs);
  }
  release();
}
