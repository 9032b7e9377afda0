// Health of auto-registered workloads from their WorkloadGroup's probe (httpGet, tcpSocket, grpc),
// as Istio marks a WorkloadEntry healthy or not. Istio's agent probes on the VM and reports over
// xDS; here the control plane probes the workload's address itself (explicit mode: the
// application's own port behind the sidecar). A workload with a probe starts unhealthy and turns
// healthy after successThreshold passes; failureThreshold failures turn it unhealthy again.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { ReadinessProbe, Resource, WorkloadGroupSpec } from '../api/index.ts';
import { warnOnce } from '../model/config-warnings.ts';
import type { ServiceRegistry, WorkloadInstance } from './service-registry.ts';

export interface WorkloadProberOptions {
  registry: ServiceRegistry;
  /** The WorkloadGroups currently configured. */
  groups: () => readonly Resource<WorkloadGroupSpec>[];
  /** Called when a workload's health changed (push endpoints). */
  onChange: () => void;
  /** How often due probes are looked for (default 250 ms). */
  tickMs?: number;
}

interface ProbeState {
  probe: string;
  nextAt: number;
  passes: number;
  failures: number;
  running: boolean;
}

const TICK_MS = 250;

export class WorkloadProber {
  readonly #o: WorkloadProberOptions;
  readonly #state = new Map<string, ProbeState>();
  #timer: NodeJS.Timeout | undefined;

  constructor(o: WorkloadProberOptions) {
    this.#o = o;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.tick(), this.#o.tickMs ?? TICK_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Starts the probes that are due (also called by tests). */
  tick(now = Date.now()): void {
    const groups = new Map(this.#o.groups().map((g) => [`${g.metadata.namespace}/${g.metadata.name}`, g]));
    const live = new Set<string>();
    for (const w of this.#o.registry.registeredWorkloads()) {
      const probe = w.group ? groups.get(`${w.namespace}/${w.group}`)?.spec.probe : undefined;
      if (!probe) {
        if (this.#o.registry.setHealth(w.key, undefined)) this.#o.onChange();
        continue;
      }
      live.add(w.key);
      const key = JSON.stringify(probe);
      let s = this.#state.get(w.key);
      if (!s || s.probe !== key) {
        s = { probe: key, nextAt: now + (probe.initialDelaySeconds ?? 0) * 1000, passes: 0, failures: 0, running: false };
        this.#state.set(w.key, s);
        if (this.#o.registry.setHealth(w.key, false)) this.#o.onChange();
      }
      if (s.running || now < s.nextAt) continue;
      s.running = true;
      const state = s;
      void runProbe(probe, w).then((ok) => {
        state.running = false;
        state.nextAt = Date.now() + (probe.periodSeconds ?? 10) * 1000;
        if (this.#state.get(w.key) !== state) return;
        if (ok) {
          state.failures = 0;
          state.passes++;
          if (state.passes >= (probe.successThreshold ?? 1) && this.#o.registry.setHealth(w.key, true)) this.#o.onChange();
        } else {
          state.passes = 0;
          state.failures++;
          if (state.failures >= (probe.failureThreshold ?? 3) && this.#o.registry.setHealth(w.key, false)) this.#o.onChange();
        }
      });
    }
    for (const k of this.#state.keys()) if (!live.has(k)) this.#state.delete(k);
  }
}

/** One probe attempt: true on success. */
export async function runProbe(p: ReadinessProbe, w: WorkloadInstance): Promise<boolean> {
  const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
  const target = (port: number, host?: string) => ({ host: host || w.address, port: w.appPorts?.[String(port)] ?? port });
  try {
    if (p.httpGet) return await httpProbe(p.httpGet, target(p.httpGet.port, p.httpGet.host), timeoutMs);
    if (p.tcpSocket) return await tcpProbe(target(p.tcpSocket.port, p.tcpSocket.host), timeoutMs);
    if (p.grpc) return await grpcProbe(target(p.grpc.port ?? 0), p.grpc.service ?? '', timeoutMs);
  } catch {
    return false;
  }
  // exec: a command on the workload's machine, which the control plane cannot run.
  warnOnce('registry', `WorkloadGroup ${w.namespace}/${w.group}: exec probes cannot run from the control plane; ${w.key} is treated as healthy`);
  return true;
}

function httpProbe(g: NonNullable<ReadinessProbe['httpGet']>, t: { host: string; port: number }, timeoutMs: number): Promise<boolean> {
  const headers: Record<string, string> = {};
  for (const h of g.httpHeaders ?? []) if (h.name) headers[h.name] = h.value ?? '';
  const mod = g.scheme === 'HTTPS' ? https : http;
  return new Promise((resolve) => {
    const req = mod.request({ ...t, path: g.path || '/', headers, timeout: timeoutMs, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function tcpProbe(t: { host: string; port: number }, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(t.port, t.host, () => {
      s.destroy();
      resolve(true);
    });
    s.setTimeout(timeoutMs, () => s.destroy());
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(false));
  });
}

/** grpc.health.v1.Health/Check: SERVING (1) passes. Messages are one field each, encoded by hand. */
function grpcProbe(t: { host: string; port: number }, service: string, timeoutMs: number): Promise<boolean> {
  const client = new grpc.Client(`${t.host}:${t.port}`, grpc.credentials.createInsecure());
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
      resolve(!err && status === 1);
    });
  });
}
