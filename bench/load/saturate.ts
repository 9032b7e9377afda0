// Closed-loop saturation with the usual tools, pinned to the load core: wrk for HTTP/1.1,
// h2load for HTTP/2 and gRPC (a unary call is a POST of one length-prefixed message).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startPinned } from '../lib/process-group.ts';
import { scratchDir } from '../servers/server.ts';
import { GRPC_PATH } from '../servers/grpc-server.ts';
import type { LoadProtocol } from './open-loop.ts';

export interface SaturationResult {
  tool: string;
  connections: number;
  threads: number;
  durationS: number;
  requests: number;
  rps: number;
  errors: number;
}

export interface SaturationRun {
  protocol: LoadProtocol;
  port: number;
  connections: number;
  threads: number;
  durationS: number;
  core: number;
}

async function runTool(name: string, core: number, command: string, args: string[]): Promise<string> {
  const p = startPinned({ name, core, command, args, kind: 'load' });
  const why = await p.exited;
  if (p.child.exitCode !== 0) throw new Error(`${why}: ${command} ${args.join(' ')}\n${p.output().trim()}`);
  return p.output();
}

const UNIT_S: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60 };
const seconds = (v: number, unit: string) => v * UNIT_S[unit];

/** Parses wrk's report (requests, duration, errors). Exported for tests. */
export function parseWrk(out: string): Omit<SaturationResult, 'tool' | 'connections' | 'threads'> {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(out);
  if (!done) throw new Error(`unexpected wrk output:\n${out}`);
  const durationS = seconds(Number(done[2]), done[3]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, v) => a + Number(v), 0) : 0;
  const requests = Number(done[1]);
  return { requests, durationS, rps: requests / durationS, errors: non2xx + socketErrors };
}

/** Parses h2load's report. Exported for tests. */
export function parseH2load(out: string): Omit<SaturationResult, 'tool' | 'connections' | 'threads'> {
  const fin = /finished in ([\d.]+)(us|ms|s|m), ([\d.]+) req\/s/.exec(out);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (!fin || !req) throw new Error(`unexpected h2load output:\n${out}`);
  return {
    requests: Number(req[4]),
    durationS: seconds(Number(fin[1]), fin[2]),
    rps: Number(fin[3]),
    errors: Number(req[5]), // h2load's "failed": errored, timed out, or neither 2xx nor 3xx
  };
}

let grpcBody: string | undefined;
function grpcRequestFile(): string {
  if (!grpcBody) {
    grpcBody = path.join(scratchDir('grpc-body'), 'request.bin');
    const msg = Buffer.alloc(16, 'q');
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(msg.length, 1);
    writeFileSync(grpcBody, Buffer.concat([frame, msg]));
  }
  return grpcBody;
}

export async function saturate(run: SaturationRun): Promise<SaturationResult> {
  const base = { connections: run.connections, threads: run.threads };
  const url = `http://127.0.0.1:${run.port}`;
  if (run.protocol === 'h1') {
    const out = await runTool('wrk', run.core, 'wrk', [`-t${run.threads}`, `-c${run.connections}`, `-d${run.durationS}s`, `${url}/`]);
    return { tool: 'wrk', ...base, ...parseWrk(out) };
  }
  const args = [`-t${run.threads}`, `-c${run.connections}`, '-m1', `-D${run.durationS}`];
  if (run.protocol === 'grpc') {
    args.push('-d', grpcRequestFile(), '-H', 'content-type: application/grpc', '-H', 'te: trailers', `${url}${GRPC_PATH}`);
  } else args.push(`${url}/`);
  const out = await runTool('h2load', run.core, 'h2load', args);
  return { tool: 'h2load', ...base, ...parseH2load(out) };
}
