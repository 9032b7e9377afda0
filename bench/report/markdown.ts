// The human summary of a run: goals (met / not met), then one row per case.
import { PROXY_ROLES, type CaseResult, type ServerFigures, type SlowAttempt } from '../cases/measure.ts';
import type { GoalCheck } from './goals.ts';
import type { ControlPlaneOutcome } from '../cases/controlplane.ts';
import type { BenchRun } from './result-file.ts';
import { SLOW_FACTOR } from '../cases/slow-windows.ts';

const f3 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(3));

function proxyCell(r: CaseResult, k: keyof ServerFigures, digits: number): string {
  const ps = (r.servers ?? []).filter((s) => PROXY_ROLES.includes(s.role));
  return ps.length ? ps.map((p) => (typeof p[k] === 'number' ? p[k].toFixed(digits) : '—')).join(' / ') : '—';
}

function baselineFor(r: CaseResult, results: CaseResult[]): CaseResult | undefined {
  const id = r.protocol === 'h1' ? 'direct' : `${r.protocol}-direct`;
  return results.find((x) => x.id === id && x.status === 'ok');
}

export function renderMarkdown(run: BenchRun): string {
  const { results, goals, controlPlane } = run;
  const lines: string[] = [];
  lines.push(`# Benchmark ${run.date} at ${run.commit}${run.smoke ? ' (smoke run: figures are not meaningful)' : ''}`, '');
  lines.push(
    `Machine: ${run.machine.nproc} vCPU ${run.machine.cpuModel}${run.machine.hypervisor ? ' (VM)' : ''}, Node ${run.machine.node}, load average before/after ${run.loadAverage.before} / ${run.loadAverage.after}. ` +
      `Servers pinned to core ${run.settings.serverCore}, load generator to core ${run.settings.loadCore}; ` +
      `latency at ${run.settings.rate} requests/s over ${run.settings.connections} keep-alive connections, sends spread evenly (open loop, measured from each request's due time), ` +
      `${run.settings.durationMs / 1000} s after ${run.settings.warmupMs / 1000} s warm-up; max throughput with ${run.settings.saturationConnections} connections for ${run.settings.saturationS} s.` +
      (run.settings.rigNodeFlags?.length ? ` rig proxy ran with the extra node flags \`${run.settings.rigNodeFlags.join(' ')}\`.` : ''),
    '',
  );
  lines.push('## Goals (issue 10 §2)', '', '| goal | measured | target | status |', '| --- | --- | --- | --- |');
  for (const g of goals) lines.push(`| ${g.goal} | ${g.measured} | ${g.target} | ${statusCell(g)} |`);
  lines.push('', '## Cases', '');
  lines.push(
    '| case | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 / p90 / p99 ms | max rps | proxy CPU s per 1000 req (sat.) | proxy vCPU at 1000 rps | proxy RSS MB idle / warm-up / 1000 rps / sat. | gen. send lag p99 ms | foreign vCPU server core (lat. / sat.) | upstream CPU µs per req (lat.) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const r of results) {
    if (r.status !== 'ok') {
      lines.push(`| ${r.id} | ${r.status}: ${(r.reason ?? '').split('\n')[0].replace(/\|/g, '\\|')} |||||||||||| `);
      continue;
    }
    const l = r.latency!.latency;
    const base = baselineFor(r, results);
    const added = base && r.hops > 0 ? (['p50', 'p90', 'p99'] as const).map((k) => f3(l[k] - base.latency!.latency[k])).join(' / ') : '—';
    const rss = (r.servers ?? []).some((s) => PROXY_ROLES.includes(s.role))
      ? `${proxyCell(r, 'rssIdleMB', 1)} · ${proxyCell(r, 'rssWarmupPeakMB', 1)} · ${proxyCell(r, 'rssAt1000MB', 1)} · ${proxyCell(r, 'rssSaturationMB', 1)}`
      : '—';
    const errs = r.latency!.errors + r.latency!.unfinished + r.saturation!.errors;
    lines.push(
      `| ${r.id}${errs ? ` (${errs} errors)` : ''} | ${f3(l.p50)} | ${f3(l.p90)} | ${f3(l.p99)} | ${f3(l.p999)} | ${added} | ${Math.round(r.saturation!.rps)}${saturated(r)} | ` +
        `${proxyCell(r, 'cpuSecondsPer1000AtSaturation', 4)} | ${proxyCell(r, 'vcpuAtRate', 3)} | ${rss} | ${f3(r.latency!.sendLag.p99)} | ${disturbed(r)} | ${coreGauge(r)} |`,
    );
  }
  lines.push(
    '',
    'Cells with two values are the two proxies of a two-hop case: server-side / client-side. "Added" is relative to the direct case of the same protocol. ' +
      '"Foreign vCPU" is what processes outside the benchmark used on the servers\' core during the window (a busy machine disturbs the figures; such windows are re-measured up to ' +
      `${run.settings.retries} times). Send lag: how late the generator wrote requests due on an idle connection (charged to latency). ` +
      'RSS: idle after start-up settles; the peak over the warm-up at the fixed rate (V8 compiling the hot path); the peak over the measured window; the peak at saturation. ' +
      `Upstream CPU per request gauges how fast the servers' core ran during the window (the upstream's work is the same in every case); a window in which it read more than ${SLOW_FACTOR}× the run's lowest for the same upstream behind a proxy was measured again after the last case, and the faster window kept (the windows not kept in parentheses: gauge and proxy vCPU).`,
  );
  if (run.telemetryCost) lines.push('', '## Telemetry cost on max throughput (alternating windows)', '', telemetryCostLines(run));
  lines.push('', '## Control plane (1000 services, 2000 simulated proxies)', '');
  lines.push(controlPlaneLine(controlPlane));
  return lines.join('\n') + '\n';
}

/** Marks a throughput the servers did not limit (their core had idle time: the load tool was the bottleneck). */
function saturated(r: CaseResult): string {
  const idle = coreIdle(r);
  return idle !== undefined && idle > 0.1 ? ` (client-bound: server core ${(idle * 100).toFixed(0)}% idle)` : '';
}

/** Idle share of the server core during saturation (ours and foreign work subtracted). */
export function coreIdle(r: CaseResult | undefined): number | undefined {
  const d = r?.disturbance?.saturation;
  return d ? Math.max(0, 1 - d.serversOnServerCore - d.serverCore) : undefined;
}

function disturbed(r: CaseResult): string {
  const d = r.disturbance;
  if (!d) return '—';
  const cell = (x: { serverCore: number; attempts: number }) => `${x.serverCore.toFixed(2)}${x.attempts > 1 ? ` (${x.attempts} tries)` : ''}`;
  return `${cell(d.latency)} / ${cell(d.saturation)}`;
}

/** The "upstream CPU µs per req" cell: the gauge of the window kept, then the windows not kept. */
export function coreGauge(r: CaseResult): string {
  const d = r.disturbance?.latency;
  if (d?.upstreamUsPerRequest === undefined) return '—';
  const proxyVcpu = (a: SlowAttempt) => a.vcpuAtRate.filter((_, i) => PROXY_ROLES.includes(r.servers![i].role)).map((v) => v.toFixed(3)).join(' / ');
  // Result files of 2026-11-26-00a40ff kept the gauge only.
  const slow = (d.slowAttempts ?? []).map((a) => (a.vcpuAtRate.length ? `${a.upstreamUsPerRequest.toFixed(1)}: ${proxyVcpu(a)} vCPU` : a.upstreamUsPerRequest.toFixed(1)));
  return `${d.upstreamUsPerRequest.toFixed(1)}${slow.length ? ` (not kept: ${slow.join('; ')})` : ''}`;
}

function statusCell(g: GoalCheck): string {
  if (g.status === 'n/a') return `n/a: ${(g.note ?? '').replace(/\|/g, '\\|')}`;
  const note = g.note ? ` (${g.note.replace(/\|/g, '\\|')})` : '';
  return (g.status === 'met' ? '**met**' : '**not met**') + note;
}

function telemetryCostLines(run: BenchRun): string {
  const t = run.telemetryCost!;
  if (!t.figures) return `n/a: ${t.reason}`;
  const f = t.figures;
  const rows = f.rounds.map((r, i) => `| ${i + 1} | ${r.offRps} | ${r.onRps} | ${(r.cost * 100).toFixed(1)}% |`);
  return [
    `Two proxies side by side on the server core, telemetry off and on (istio.stats, 1% tracing), saturated in turn for ${f.windowS} s each (off then on, then on then off, ...). Cost: the median round, ${(f.cost * 100).toFixed(1)}%.`,
    '',
    '| round | off rps | on rps | cost |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

function controlPlaneLine(cp: ControlPlaneOutcome): string {
  if (!cp.figures) return `n/a: ${cp.reason}`;
  const f = cp.figures;
  return `${f.proxies} proxies, ${f.services} services: all ACKed ${(f.ackAllMs / 1000).toFixed(2)} s after the change; RSS ${f.rssMB.toFixed(0)} MB${f.cpuSeconds !== undefined ? `; CPU ${f.cpuSeconds.toFixed(2)} s` : ''}.`;
}
