// The open-loop load generator (one process; the driver in open-loop-driver.ts may start
// several). Request k is due at start + phase + k/rate, on connection k mod N, whatever happened
// to earlier requests: the connections' sends are spread evenly in time, never fired together.
// The loop polls the clock between I/O events (setImmediate), so a send leaves within a few
// microseconds of its due time; the achieved lag is measured and reported.
import { Recorder, type LoadConnection } from './recorder.ts';
import { H1Connection } from './h1-connection.ts';
import { H2Connection } from './h2-connection.ts';
import { GrpcConnection } from './grpc-connection.ts';
import { summarize, type LatencySummary } from '../lib/percentiles.ts';
import { Worker } from 'node:worker_threads';
import type { ClockConfig } from './clock-worker.ts';
import { lightenAsyncResourceBind } from '../../src/proxy/upstream/async-resource-bind.ts';

// node:http2's client (ours for h2, grpc-js's for gRPC) would promote every stream and run the
// generator into mark-compacts that it charges to the system under test (h2-direct p99 17 → 6 ms
// with this); the proxy does the same for its HTTP/2 upstreams (async-resource-bind.ts).
lightenAsyncResourceBind();

export type LoadProtocol = 'h1' | 'h2' | 'grpc';

export interface OpenLoopConfig {
  protocol: LoadProtocol;
  host: string;
  port: number;
  path: string;
  authority: string;
  /** Requests per second sent by this process. */
  rate: number;
  connections: number;
  /** Wall-clock time (ms since the epoch) at which the schedule starts, shared by all processes. */
  startAtEpochMs: number;
  /** Offset of this process's schedule, so that several processes interleave. */
  phaseMs: number;
  warmupMs: number;
  durationMs: number;
  /**
   * How sends are timed: 'clock' sleeps until each due time on a worker thread (the default; run
   * the process SCHED_FIFO for exact wake-ups), 'spin' busy-polls the clock between I/O events
   * (exact on an idle core, but a spinner loses the CPU to any other work there), 'timer' uses
   * millisecond timers (for several generator processes sharing a core).
   */
  timing: 'clock' | 'spin' | 'timer';
}

export type OpenLoopMessage =
  | { type: 'measuring' }
  | { type: 'ended' }
  | { type: 'result'; result: OpenLoopProcessResult }
  | { type: 'error'; message: string };

export interface OpenLoopProcessResult {
  scheduled: number;
  latencies: number[];
  serviceTimes: number[];
  sendLag: LatencySummary;
  errors: number;
  errorKinds: Record<string, number>;
  unfinished: number;
}

const DRAIN_MS = 5000;
const CLOCK = new URL('./clock-worker.ts', import.meta.url);
/** Typical delivery time of the clock's message (measured under SCHED_FIFO: 30-60 µs). */
const CLOCK_LEAD_MS = 0.06;

function connect(cfg: OpenLoopConfig, rec: Recorder): LoadConnection {
  if (cfg.protocol === 'h2') return new H2Connection(cfg.host, cfg.port, cfg.path, rec);
  if (cfg.protocol === 'grpc') return new GrpcConnection(cfg.host, cfg.port, rec);
  return new H1Connection(cfg.host, cfg.port, cfg.path, cfg.authority, rec);
}

const round = (v: number) => Math.round(v * 1000) / 1000;

export async function runOpenLoop(cfg: OpenLoopConfig, emit: (m: OpenLoopMessage) => void): Promise<void> {
  const rec = new Recorder(Math.ceil((cfg.rate * cfg.durationMs) / 1000) + 64);
  const conns = Array.from({ length: cfg.connections }, () => connect(cfg, rec));
  await Promise.all(conns.map((c) => c.open()));

  const interval = 1000 / cfg.rate;
  const base = cfg.startAtEpochMs - performance.timeOrigin + cfg.phaseMs;
  rec.recordFrom = base + cfg.warmupMs;
  const endDue = rec.recordFrom + cfg.durationMs;
  const firstRecorded = Math.ceil(cfg.warmupMs / interval);
  let k = 0;
  let next = base;
  let scheduled = 0;

  const sendDue = () => {
    if (k === firstRecorded) emit({ type: 'measuring' });
    if (next >= rec.recordFrom) scheduled++;
    conns[k % conns.length].send(next);
    k++;
    next = base + k * interval;
  };
  await new Promise<void>((resolve, reject) => {
    if (cfg.timing === 'clock') {
      const clock = new Worker(CLOCK, { workerData: { origin: performance.timeOrigin, base, interval, leadMs: CLOCK_LEAD_MS, end: endDue } satisfies ClockConfig });
      clock.on('error', reject);
      clock.on('message', (tick: number) => {
        if (tick < 0) {
          void clock.terminate();
          return resolve();
        }
        while (performance.now() < next) {
          // at most CLOCK_LEAD_MS early: wait out the rest on the CPU
        }
        sendDue();
      });
      return;
    }
    const tick = () => {
      const now = performance.now();
      while (next <= now) {
        if (next >= endDue) return resolve();
        sendDue();
      }
      if (cfg.timing === 'spin' || next - now < 2) setImmediate(tick);
      else setTimeout(tick, next - now - 1);
    };
    tick();
  });
  emit({ type: 'ended' });

  const drainUntil = performance.now() + DRAIN_MS;
  while (rec.outstanding > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 5));
  for (const c of conns) c.close();
  emit({
    type: 'result',
    result: {
      scheduled,
      latencies: Array.from(rec.latencies.values(), round),
      serviceTimes: Array.from(rec.serviceTimes.values(), round),
      sendLag: summarize(rec.sendLags.values()),
      errors: rec.errors,
      errorKinds: Object.fromEntries(rec.errorKinds),
      unfinished: Math.max(0, scheduled - rec.latencies.length - rec.errors),
    },
  });
}

if (import.meta.main) {
  const cfg = JSON.parse(process.argv[2] ?? '') as OpenLoopConfig;
  let last: Promise<unknown> = Promise.resolve();
  const emit = (m: OpenLoopMessage) => {
    last = new Promise((resolve) => process.send!(m, resolve));
  };
  runOpenLoop(cfg, emit)
    .catch((err: Error) => emit({ type: 'error', message: err.message }))
    .then(() => last)
    .finally(() => process.disconnect());
}
