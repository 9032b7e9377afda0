// A window at the fixed rate in which the server core ran slow is measured again, as one in which
// other processes used the core is (measure.ts). The gauge: behind a proxy, the upstream does the
// same work per request in every case, so its CPU per request tells how fast the core ran during
// the window. On the 2-vCPU VMs these figures come from it reads 10–14 µs in most windows and
// 17–20 µs in some minutes-long periods, during which every server on the core costs about 1.5×
// as much per request: across eleven runs, rig-1hop's vCPU at 1000 rps read 0.063–0.109 while its
// ratio to its upstream's stayed within 5.7–6.9 (HAProxy's within 3.9–4.4). Such a window measures
// the machine, not the proxy; the rule applies to every proxy alike and the result file keeps the
// gauge of every attempt.
import type { BenchCase } from './cases.ts';
import { runCase, type CaseResult, type MeasureSettings, type SlowAttempt } from './measure.ts';

/** A window whose gauge exceeds the run's lowest for the same upstream by this factor is measured again. */
export const SLOW_FACTOR = 1.3;

/** Cases comparable by gauge: the same upstream, behind a proxy (a direct client loads it differently). */
function gaugeGroup(r: CaseResult): string | undefined {
  const upstream = r.servers?.find((s) => s.role === 'upstream');
  return upstream && r.hops > 0 ? upstream.name : undefined;
}

const gauge = (r: CaseResult) => (r.status === 'ok' ? r.disturbance?.latency.upstreamUsPerRequest : undefined);

/** The results measured while the core ran slow: gauge above SLOW_FACTOR × the lowest of their group. */
export function slowWindows(results: CaseResult[]): CaseResult[] {
  const lowest = new Map<string, number>();
  for (const r of results) {
    const group = gaugeGroup(r);
    const g = gauge(r);
    if (group && g !== undefined) lowest.set(group, Math.min(lowest.get(group) ?? Infinity, g));
  }
  return results.filter((r) => {
    const group = gaugeGroup(r);
    const g = gauge(r);
    return group !== undefined && g !== undefined && g > SLOW_FACTOR * lowest.get(group)!;
  });
}

/** Keeps whichever window ran on the faster core; the other goes to `slowAttempts` (gauge and vCPU). */
export function keepFasterWindow(r: CaseResult, again: CaseResult): void {
  const kept = r.disturbance!.latency;
  const fresh = again.latencyWindow;
  if (fresh?.disturbance.upstreamUsPerRequest === undefined) return;
  const keptAttempt: SlowAttempt = { upstreamUsPerRequest: kept.upstreamUsPerRequest!, vcpuAtRate: r.servers!.map((s) => s.vcpuAtRate) };
  const freshAttempt: SlowAttempt = { upstreamUsPerRequest: fresh.disturbance.upstreamUsPerRequest, vcpuAtRate: fresh.servers.map((s) => s.vcpuAtRate) };
  if (freshAttempt.upstreamUsPerRequest < keptAttempt.upstreamUsPerRequest) {
    r.latency = again.latency;
    r.servers = r.servers!.map((s, i) => ({ ...s, ...fresh.servers[i] }));
    r.disturbance!.latency = { ...fresh.disturbance, slowAttempts: [...(kept.slowAttempts ?? []), keptAttempt] };
  } else {
    kept.slowAttempts = [...(kept.slowAttempts ?? []), freshAttempt];
  }
}

/** After every case ran: the slow windows again, `m.retries` passes at most. */
export async function remeasureSlowWindows(cases: readonly BenchCase[], results: CaseResult[], m: MeasureSettings, log: (s: string) => void): Promise<void> {
  for (let pass = 0; pass < m.retries; pass++) {
    const slow = slowWindows(results);
    if (!slow.length) return;
    for (const r of slow) {
      log(`${r.id}: the core ran slow during its window (upstream ${gauge(r)} µs per request): measuring it again`);
      const again = await runCase(cases.find((c) => c.id === r.id)!, m, true);
      if (again.status !== 'ok') log(`${r.id}: ${again.status}: ${again.reason}`);
      else keepFasterWindow(r, again);
    }
  }
}
