// Runs the open-loop generator in one or more processes pinned to the load core, tells the
// caller when the measured window starts and ends (to sample the servers' CPU exactly over it),
// and merges the processes' samples into one latency distribution.
import path from 'node:path';
import { realtimeNodeFlags, startPinned, stop } from '../lib/process-group.ts';
import { summarize, type LatencySummary } from '../lib/percentiles.ts';
import type { LoadProtocol, OpenLoopConfig, OpenLoopMessage, OpenLoopProcessResult } from './open-loop.ts';

const GENERATOR = path.join(import.meta.dirname, 'open-loop.ts');

export interface OpenLoopRun {
  protocol: LoadProtocol;
  port: number;
  path?: string;
  rate: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  processes: number;
  core: number;
  /** Called when the measured window starts and ends, with the generator processes' pids. */
  onMeasuring?: (pids: number[]) => void;
  onEnded?: (pids: number[]) => void;
}

export interface OpenLoopResult {
  rate: number;
  connections: number;
  processes: number;
  durationS: number;
  scheduled: number;
  completed: number;
  errors: number;
  errorKinds: Record<string, number>;
  unfinished: number;
  /** Latency from each request's due time to the end of its response (ms): corrected. */
  latency: LatencySummary;
  /** Latency from the actual write to the end of the response (ms): what a closed-loop tool reports. */
  serviceTime: LatencySummary;
  /** How late the generator wrote requests due on an idle connection (ms), worst process. */
  sendLag: LatencySummary;
}

export async function runOpenLoopLoad(run: OpenLoopRun): Promise<OpenLoopResult> {
  const procs = Math.max(1, Math.min(run.processes, run.connections));
  const startAt = Date.now() + 300 + 100 * procs; // time for every process to start and connect
  const results: OpenLoopProcessResult[] = [];
  let measuring = 0;
  let ended = 0;
  const pids: number[] = [];
  await Promise.all(
    Array.from({ length: procs }, (_, j) => {
      const cfg: OpenLoopConfig = {
        protocol: run.protocol,
        host: '127.0.0.1',
        port: run.port,
        path: run.path ?? '/',
        authority: `127.0.0.1:${run.port}`,
        rate: run.rate / procs,
        connections: Math.floor(run.connections / procs) + (j < run.connections % procs ? 1 : 0),
        startAtEpochMs: startAt,
        phaseMs: (j * 1000) / run.rate,
        warmupMs: run.warmupMs,
        durationMs: run.durationMs,
        timing: procs === 1 ? 'clock' : 'timer',
      };
      const gen = startPinned({
        name: `open-loop-${j}`,
        core: run.core,
        command: process.execPath,
        // A large young generation makes scavenges (each a pause of the generator) rare.
        args: [...realtimeNodeFlags(), '--max-semi-space-size=64', '--min-semi-space-size=64', GENERATOR, JSON.stringify(cfg)],
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        kind: 'generator',
      });
      pids.push(gen.pid);
      return new Promise<void>((resolve, reject) => {
        let got = false;
        // A generator that overruns its schedule by far is stuck: stop it rather than wait forever.
        const limitMs = startAt - Date.now() + run.warmupMs + run.durationMs + 30_000;
        const watchdog = setTimeout(() => {
          reject(new Error(`load generator did not finish within ${Math.round(limitMs / 1000)} s:\n${gen.output().trim()}`));
          void stop(gen);
        }, limitMs);
        void gen.exited.then(() => clearTimeout(watchdog));
        gen.child.on('message', (m: OpenLoopMessage) => {
          if (m.type === 'measuring' && ++measuring === procs) run.onMeasuring?.(pids);
          else if (m.type === 'ended' && ++ended === procs) run.onEnded?.(pids);
          else if (m.type === 'result') {
            got = true;
            results.push(m.result);
          }
          else if (m.type === 'error') reject(new Error(`load generator: ${m.message}`));
        });
        void gen.exited.then((why) => {
          if (got) resolve();
          else reject(new Error(`load generator ${why}:\n${gen.output().trim()}`));
        });
      }).finally(() => stop(gen));
    }),
  );
  const latencies = results.flatMap((r) => r.latencies);
  const lags = results.map((r) => r.sendLag);
  const worst = (k: keyof LatencySummary) => Math.max(...lags.map((l) => l[k]));
  const errorKinds: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + v;
  return {
    rate: run.rate,
    connections: run.connections,
    processes: procs,
    durationS: run.durationMs / 1000,
    scheduled: results.reduce((a, r) => a + r.scheduled, 0),
    completed: latencies.length,
    errors: results.reduce((a, r) => a + r.errors, 0),
    errorKinds,
    unfinished: results.reduce((a, r) => a + r.unfinished, 0),
    latency: summarize(latencies),
    serviceTime: summarize(results.flatMap((r) => r.serviceTimes)),
    sendLag: { samples: lags.reduce((a, l) => a + l.samples, 0), mean: worst('mean'), p50: worst('p50'), p90: worst('p90'), p99: worst('p99'), p999: worst('p999'), max: worst('max') },
  };
}
