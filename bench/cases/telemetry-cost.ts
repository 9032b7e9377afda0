// Telemetry's cost on max throughput, as a ratio within the same minutes: a proxy with telemetry
// off and one with it on (istio.stats, 1% tracing to a collector) serve the same upstream side by
// side on the server core, and saturation windows alternate between them (off, on, on, off, off,
// on), so a machine that slows down for a while weighs on both. Measured one after the other in
// separate cases, the same pair read 31%, 11.5% and 6.2% within an hour. The cost is the median
// over the rounds of 1 − on / off.
import { startNginxUpstream } from '../servers/nginx.ts';
import { startRigProxy } from '../servers/rig-proxy.ts';
import { startOtlpSink } from '../servers/otlp-sink.ts';
import type { Server } from '../servers/server.ts';
import { probe } from '../load/probe.ts';
import { saturate, type SaturationResult } from '../load/saturate.ts';
import type { MeasureSettings } from './measure.ts';

export interface TelemetryCostRound {
  offRps: number;
  onRps: number;
  /** 1 − on / off */
  cost: number;
}

export interface TelemetryCostFigures {
  windowS: number;
  rounds: TelemetryCostRound[];
  /** The median of the rounds' costs. */
  cost: number;
}

export interface TelemetryCostOutcome {
  figures: TelemetryCostFigures | null;
  reason: string;
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function runTelemetryCost(m: MeasureSettings, rounds: number): Promise<TelemetryCostOutcome> {
  const started: Server[] = [];
  try {
    const sink = await startOtlpSink({ core: m.loadCore });
    started.push(sink);
    const up = await startNginxUpstream({ core: m.serverCore });
    started.push(up);
    const common = { role: 'proxy', core: m.serverCore, upstreamPort: up.port, nodeFlags: m.rigNodeFlags } as const;
    const off = await startRigProxy({ ...common, name: 'rig-proxy-telemetry-off' });
    started.push(off);
    const on = await startRigProxy({ ...common, name: 'rig-proxy-telemetry-on', telemetryCollectorPort: sink.port });
    started.push(on);
    await probe('h1', off.port);
    await probe('h1', on.port);
    const crashed = Promise.race(started.map((s) => s.proc.exited.then((w) => Promise.reject(new Error(`${s.name}: ${w} during the measurement:\n${s.proc.output().trim()}`)))));
    crashed.catch(() => {});
    const window = (port: number, durationS: number): Promise<SaturationResult> =>
      Promise.race([saturate({ protocol: 'h1', port, connections: m.saturationConnections, threads: m.saturationThreads, core: m.loadCore, durationS }), crashed]);
    // One window each before measuring: the request path tiers up within seconds at saturation,
    // the span export (one batch a second) much later. With 5 s, the first round still read 20%
    // where the next two read 6%.
    const warmupS = m.saturationWarmupS > 0 ? m.saturationS : 0;
    if (warmupS) for (const p of [off, on]) await window(p.port, warmupS);
    const out: TelemetryCostRound[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? [off, on] : [on, off];
      const rps = new Map<Server, number>();
      for (const p of order) rps.set(p, (await window(p.port, m.saturationS)).rps);
      const offRps = rps.get(off)!;
      const onRps = rps.get(on)!;
      out.push({ offRps: Math.round(offRps), onRps: Math.round(onRps), cost: Number((1 - onRps / offRps).toFixed(4)) });
    }
    return { figures: { windowS: m.saturationS, rounds: out, cost: median(out.map((r) => r.cost)) }, reason: '' };
  } catch (err) {
    return { figures: null, reason: (err as Error).message };
  } finally {
    for (const s of started.reverse()) await s.stop();
  }
}
