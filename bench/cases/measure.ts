// Runs one case: start its topology, probe it, then measure latency at a fixed rate (open
// loop) and throughput at saturation, reading every server's CPU and memory from /proc.
import type { BenchCase, CaseContext } from './cases.ts';
import type { Server } from '../servers/server.ts';
import { probe } from '../load/probe.ts';
import { runOpenLoopLoad, type OpenLoopResult } from '../load/open-loop-driver.ts';
import { saturate, type SaturationResult } from '../load/saturate.ts';
import { coreBusySeconds, cpuSeconds, peakRssBytes, resetPeakRss, rssBytes } from '../lib/proc-stats.ts';

export interface MeasureSettings {
  loadCore: number;
  serverCore: number;
  rate: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  loadProcesses: number;
  saturationConnections: number;
  saturationThreads: number;
  saturationS: number;
  saturationWarmupS: number;
  /** A window in which other processes used more than this (vCPU) of our cores is measured again. */
  maxForeignVcpu: number;
  retries: number;
  rigNodeFlags?: string[];
}

export const PROXY_ROLES: readonly Server['role'][] = ['proxy', 'client-proxy', 'server-proxy'];

export interface ServerFigures {
  name: string;
  role: Server['role'];
  startupMs: number;
  rssIdleMB: number;
  /** Peak over the measured window at the fixed rate (the proxy warmed up). */
  rssAt1000MB: number;
  /** Peak over the warm-up at the fixed rate: V8 compiling the hot path holds compiler memory. */
  rssWarmupPeakMB: number;
  /** vCPU used while serving the fixed rate (CPU seconds per wall second). */
  vcpuAtRate: number;
  rssSaturationMB: number;
  cpuSecondsPer1000AtSaturation: number;
}

export interface SlowAttempt {
  upstreamUsPerRequest: number;
  /** Per server, in start order. */
  vcpuAtRate: number[];
}

/** CPU that processes outside the benchmark used on its cores during a window (vCPU). */
export interface Disturbance {
  serverCore: number;
  /**
   * Latency window: the upstream's CPU per request (µs), the same work in every case, so it gauges
   * how fast the server core ran during the window (see slow-windows.ts). Absent without one upstream.
   */
  upstreamUsPerRequest?: number;
  /** The windows not kept because the core ran slower (slow-windows.ts): gauge and vCPU per server. */
  slowAttempts?: SlowAttempt[];
  /** vCPU the servers under test used on their core (at saturation: < 0.9 means the load tool was the bottleneck). */
  serversOnServerCore: number;
  /** Unknown (null) during saturation: wrk's own use is not separated. */
  loadCore: number | null;
  attempts: number;
}

export interface CaseResult {
  id: string;
  title: string;
  protocol: string;
  proxy: string;
  hops: number;
  status: 'ok' | 'n/a' | 'failed';
  reason?: string;
  latency?: OpenLoopResult;
  saturation?: SaturationResult;
  servers?: ServerFigures[];
  disturbance?: { latency: Disturbance; saturation: Disturbance };
  /** A latency-only run's figures per server, in start order (runCase with latencyOnly). */
  latencyWindow?: { servers: Pick<ServerFigures, 'rssAt1000MB' | 'rssWarmupPeakMB' | 'vcpuAtRate'>[]; disturbance: Disturbance };
}

const MB = 2 ** 20;
const round = (v: number, digits = 3) => Number(v.toFixed(digits));

interface Snapshot {
  t: number;
  serverCore: number;
  loadCore: number;
  servers: number[];
  generators: number;
  self: number;
}

function snapshot(m: MeasureSettings, servers: Server[], generatorPids: number[] = []): Snapshot {
  const self = process.cpuUsage();
  return {
    t: performance.now(),
    serverCore: coreBusySeconds(m.serverCore),
    loadCore: coreBusySeconds(m.loadCore),
    servers: servers.map((s) => cpuSeconds(s.proc.pid)),
    generators: generatorPids.reduce((a, p) => a + cpuSeconds(p), 0),
    self: (self.user + self.system) / 1e6,
  };
}

interface Window {
  wall: number;
  /** The upstream's CPU seconds in the window (undefined unless the topology has exactly one). */
  upstreamCpu: number | undefined;
  serverCpu: number[];
  /** vCPU our servers used on the server core: near 1 when they, not the load tool, are the bottleneck. */
  serverCoreOurs: number;
  foreignServerCore: number;
  foreignLoadCore: number;
}

function window(m: MeasureSettings, servers: Server[], a: Snapshot, b: Snapshot): Window {
  const wall = (b.t - a.t) / 1000;
  const serverCpu = b.servers.map((v, i) => v - a.servers[i]);
  const on = (core: number) => serverCpu.reduce((x, y, i) => (servers[i].core === core ? x + y : x), 0);
  const upstreams = servers.flatMap((s, i) => (s.role === 'upstream' ? [serverCpu[i]] : []));
  return {
    wall,
    upstreamCpu: upstreams.length === 1 ? upstreams[0] : undefined,
    serverCpu,
    serverCoreOurs: on(m.serverCore) / wall,
    foreignServerCore: Math.max(0, (b.serverCore - a.serverCore - on(m.serverCore)) / wall),
    foreignLoadCore: Math.max(0, (b.loadCore - a.loadCore - on(m.loadCore) - (b.generators - a.generators) - (b.self - a.self)) / wall),
  };
}

async function latencyWindow(c: BenchCase, servers: Server[], entryPort: number, m: MeasureSettings) {
  let a: Snapshot | undefined;
  let b: Snapshot | undefined;
  let warmupPeak: number[] = [];
  const latency = await runOpenLoopLoad({
    protocol: c.protocol,
    port: entryPort,
    rate: m.rate,
    connections: m.connections,
    warmupMs: m.warmupMs,
    durationMs: m.durationMs,
    processes: m.loadProcesses,
    core: m.loadCore,
    onMeasuring: (pids) => {
      a = snapshot(m, servers, pids);
      warmupPeak = servers.map((s) => peakRssBytes(s.proc.pid));
      for (const s of servers) resetPeakRss(s.proc.pid);
    },
    onEnded: (pids) => (b = snapshot(m, servers, pids)),
  });
  if (!a || !b) throw new Error('the load generator never reported its measured window');
  return { latency, w: window(m, servers, a, b), warmupPeak };
}

/**
 * Idle is at rest, after start-up has settled: `rig proxy` returns its start-up memory (heap
 * trim, executable pages) within ~0.5 s of going live; the other servers have nothing to settle.
 */
const IDLE_SETTLE_MS = 2000;

const head = (c: BenchCase) => ({ id: c.id, title: c.title, protocol: c.protocol, proxy: c.proxy, hops: c.hops });

/** µs of the upstream's CPU per request served in a latency window. */
function upstreamUsPerRequest(lat: { latency: OpenLoopResult; w: Window }): number | undefined {
  return lat.w.upstreamCpu !== undefined && lat.latency.completed > 0 ? round((lat.w.upstreamCpu / lat.latency.completed) * 1e6, 2) : undefined;
}

async function measureTopology(c: BenchCase, servers: Server[], entryPort: number, m: MeasureSettings, latencyOnly: boolean): Promise<CaseResult> {
  await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
  const idle = servers.map((s) => rssBytes(s.proc.pid));

  let lat: Awaited<ReturnType<typeof latencyWindow>>;
  let latAttempts = 0;
  do {
    for (const s of servers) resetPeakRss(s.proc.pid);
    lat = await latencyWindow(c, servers, entryPort, m);
    latAttempts++;
  } while (latAttempts <= m.retries && Math.max(lat.w.foreignServerCore, lat.w.foreignLoadCore) > m.maxForeignVcpu);
  const rssAtRate = servers.map((s) => peakRssBytes(s.proc.pid));
  const latencyDisturbance: Disturbance = {
    serverCore: round(lat.w.foreignServerCore),
    serversOnServerCore: round(lat.w.serverCoreOurs),
    loadCore: round(lat.w.foreignLoadCore),
    attempts: latAttempts,
    upstreamUsPerRequest: upstreamUsPerRequest(lat),
  };
  const figures = (i: number) => ({
    rssAt1000MB: round(rssAtRate[i] / MB, 1),
    rssWarmupPeakMB: round(lat.warmupPeak[i] / MB, 1),
    vcpuAtRate: round(lat.w.serverCpu[i] / lat.w.wall),
  });
  if (latencyOnly) return { ...head(c), status: 'ok', latency: lat.latency, latencyWindow: { servers: servers.map((_, i) => figures(i)), disturbance: latencyDisturbance } };

  const sat = { protocol: c.protocol, port: entryPort, connections: m.saturationConnections, threads: m.saturationThreads, core: m.loadCore };
  if (m.saturationWarmupS > 0) await saturate({ ...sat, durationS: m.saturationWarmupS });
  let saturation: SaturationResult;
  let satW: Window;
  let satAttempts = 0;
  do {
    for (const s of servers) resetPeakRss(s.proc.pid);
    const a = snapshot(m, servers);
    saturation = await saturate({ ...sat, durationS: m.saturationS });
    satW = window(m, servers, a, snapshot(m, servers));
    satAttempts++;
  } while (satAttempts <= m.retries && satW.foreignServerCore > m.maxForeignVcpu);

  return {
    ...head(c),
    status: 'ok',
    latency: lat.latency,
    saturation,
    servers: servers.map((s, i) => ({
      name: s.name,
      role: s.role,
      startupMs: round(s.startupMs, 1),
      rssIdleMB: round(idle[i] / MB, 1),
      ...figures(i),
      rssSaturationMB: round(peakRssBytes(s.proc.pid) / MB, 1),
      cpuSecondsPer1000AtSaturation: round(satW.serverCpu[i] / (saturation.requests / 1000), 4),
    })),
    disturbance: {
      latency: latencyDisturbance,
      saturation: { serverCore: round(satW.foreignServerCore), serversOnServerCore: round(satW.serverCoreOurs), loadCore: null, attempts: satAttempts },
    },
  };
}

/**
 * Starts the case's topology, measures it and stops it. `latencyOnly`: the window at the fixed rate
 * alone, its figures in `latencyWindow` (to measure a window again, slow-windows.ts).
 */
export async function runCase(c: BenchCase, m: MeasureSettings, latencyOnly = false): Promise<CaseResult> {
  const why = c.unavailable();
  if (why) return { ...head(c), status: 'n/a', reason: why };
  const started: Server[] = [];
  const ctx: CaseContext = { serverCore: m.serverCore, loadCore: m.loadCore, rigNodeFlags: m.rigNodeFlags };
  try {
    const topo = await c.start(ctx, started);
    try {
      await probe(c.protocol, topo.entryPort);
    } catch (err) {
      if (c.naWhenProbeFails) return { ...head(c), status: 'n/a', reason: `${c.naWhenProbeFails}: ${(err as Error).message}` };
      throw err;
    }
    const crashed = Promise.race(topo.servers.map((s) => s.proc.exited.then((w) => Promise.reject(new Error(`${w} during the measurement:\n${s.proc.output().trim()}`)))));
    crashed.catch(() => {});
    return await Promise.race([measureTopology(c, topo.servers, topo.entryPort, m, latencyOnly), crashed]);
  } catch (err) {
    return { ...head(c), status: 'failed', reason: (err as Error).message };
  } finally {
    for (const s of started.reverse()) await s.stop();
  }
}
