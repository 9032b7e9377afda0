// One attempt of a readiness probe, run beside the workload as Istio's agent runs it: an HTTP GET
// answered 200-399, a TCP connect, a grpc.health.v1 Check answered SERVING, or a command that
// exits 0. Ports are the workload's; in explicit mode the application listens on its app port
// (RIG_EXPLICIT.appPorts), which the probe uses instead. Hosts default to 127.0.0.1.
import { spawn } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { http } from '../node-http.ts';
import type { ReadinessProbe } from './readiness-probe.ts';

export interface ProbeOutcome {
  healthy: boolean;
  /** Why it failed (what the control plane records for an unhealthy workload). */
  message: string;
}

export interface ProbeTarget {
  /** Workload port → the port the application really listens on; other ports are used as they are. */
  appPorts?: Record<string, number>;
  /**
   * The environment of exec probes. Istio's agent runs them as its own children, in its own (the
   * sidecar's or the VM agent's) environment: that is the default. A runtime that knows the
   * application's environment (a Kubernetes exec probe runs in the container's) gives it here.
   */
  execEnv?: NodeJS.ProcessEnv;
}

const LOCAL = '127.0.0.1';
/** Output of a failed command kept for its message. */
const OUTPUT_LIMIT = 512;

const pass: ProbeOutcome = { healthy: true, message: '' };
const fail = (message: string): ProbeOutcome => ({ healthy: false, message });

/** Runs the probe's method once; never throws. */
export async function probeOnce(p: ReadinessProbe, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  const port = (n: number) => target.appPorts?.[String(n)] ?? n;
  try {
    if (p.exec) return await execProbe(p.exec.command, timeoutMs, target.execEnv ?? process.env);
    if (p.httpGet) return await httpProbe(p.httpGet, port(p.httpGet.port), timeoutMs);
    if (p.tcpSocket) return await tcpProbe(p.tcpSocket.host || LOCAL, port(p.tcpSocket.port), timeoutMs);
    if (p.grpc) return await grpcProbe(port(p.grpc.port), p.grpc.service ?? '', timeoutMs);
  } catch (err) {
    return fail((err as Error).message);
  }
  return fail('the probe has no method');
}

/** The program itself, with its arguments: no shell unless the command names one. Killed at the timeout. */
function execProbe(command: string[], timeoutMs: number, env: NodeJS.ProcessEnv): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    let done = false;
    const finish = (o: ProbeOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const child = spawn(command[0], command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    const keep = (d: Buffer) => {
      if (output.length < OUTPUT_LIMIT) output += d.toString('utf8', 0, OUTPUT_LIMIT - output.length);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => finish(fail(`cannot run ${JSON.stringify(command[0])}: ${err.message}`)));
    // 'exit', not 'close': a background child of the command may keep its output open.
    child.on('exit', (code, signal) => {
      if (code === 0) return finish(pass);
      const why = timedOut ? `timed out after ${timeoutMs / 1000}s` : code !== null ? `exited with status ${code}` : `killed by ${signal}`;
      const out = output.trim();
      finish(fail(`command ${JSON.stringify(command.join(' '))} ${why}${out ? `: ${out}` : ''}`));
    });
  });
}

function httpProbe(g: NonNullable<ReadinessProbe['httpGet']>, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  // As Istio's agent: the given headers (Host among them), its own User-Agent unless one is given.
  const headers: Record<string, string> = { 'user-agent': 'istio-probe/1.0' };
  for (const h of g.httpHeaders ?? []) if (h.name) headers[h.name.toLowerCase()] = h.value ?? '';
  const secure = g.scheme?.toUpperCase() === 'HTTPS';
  const mod = secure ? https : http;
  const url = `${secure ? 'https' : 'http'}://${g.host || LOCAL}:${port}${g.path || '/'}`;
  return new Promise((resolve) => {
    const req = mod.request({ host: g.host || LOCAL, port, path: g.path || '/', headers, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      clearTimeout(timer);
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? pass : fail(`GET ${url}: status ${code}, not 200-399`));
    });
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${timeoutMs / 1000}s`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      resolve(fail(`GET ${url}: ${err.message}`));
    });
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => {
      s.destroy();
      resolve(pass);
    });
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`timed out after ${timeoutMs / 1000}s`)));
    s.on('error', (err) => resolve(fail(`connect ${host}:${port}: ${err.message}`)));
  });
}

const SERVING = 1;

/** grpc.health.v1.Health/Check; SERVING passes. The messages have one field each, encoded with protobufjs' writer. */
function grpcProbe(port: number, service: string, timeoutMs: number): Promise<ProbeOutcome> {
  const client = new grpc.Client(`${LOCAL}:${port}`, grpc.credentials.createInsecure());
  const serialize = (s: string) => Buffer.from(protobuf.Writer.create().uint32(10).string(s).finish());
  const deserialize = (b: Buffer) => {
    const r = protobuf.Reader.create(b);
    let status = 0;
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag >>> 3 === 1) status = r.int32();
      else r.skipType(tag & 7);
    }
    return status;
  };
  return new Promise((resolve) => {
    client.makeUnaryRequest('/grpc.health.v1.Health/Check', serialize, deserialize, service, { deadline: Date.now() + timeoutMs }, (err, status) => {
      client.close();
      if (err) resolve(fail(`grpc.health.v1.Health/Check on ${LOCAL}:${port}: ${err.details || err.message}`));
      else resolve(status === SERVING ? pass : fail(`grpc.health.v1.Health/Check on ${LOCAL}:${port}${service ? ` for "${service}"` : ''}: status ${status}, not SERVING`));
    });
  });
}
