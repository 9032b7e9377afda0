// The goals of issue 10 §2, checked against one run's results: each is met, not met, or n/a
// (with the reason) when a case it needs could not run.
import { PROXY_ROLES, type CaseResult, type ServerFigures } from '../cases/measure.ts';
import type { ControlPlaneFigures } from '../cases/controlplane.ts';
import type { TelemetryCostOutcome } from '../cases/telemetry-cost.ts';
import { coreIdle } from './markdown.ts';

export interface GoalCheck {
  goal: string;
  measured: string;
  target: string;
  status: 'met' | 'not met' | 'n/a';
  note?: string;
}

const ms = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms`;

function find(results: CaseResult[], id: string): CaseResult | undefined {
  return results.find((r) => r.id === id);
}

function whyNot(...cases: (CaseResult | undefined)[]): string {
  return cases
    .filter((c) => c?.status !== 'ok')
    .map((c) => (c ? `${c.id}: ${c.status} (${c.reason?.split('\n')[0]})` : 'case not run'))
    .join('; ');
}

function check(goal: string, target: string, value: number | undefined, limit: number, fmt: (v: number) => string, missing: string, higherIsBetter = false): GoalCheck {
  if (value === undefined || Number.isNaN(value)) return { goal, measured: '—', target, status: 'n/a', note: missing };
  const ok = higherIsBetter ? value >= limit : value <= limit;
  return { goal, measured: fmt(value), target, status: ok ? 'met' : 'not met' };
}

/**
 * Two proxies cannot take away more time than the limit allows them to add: when the case reads
 * faster than direct by more than that, direct's window was the slower one and the subtraction
 * measures the windows, not the proxies.
 */
function baselineSlower(c: GoalCheck, added: number | undefined, limit: number, k: 'p50' | 'p90' | 'p99', direct?: CaseResult, two?: CaseResult): GoalCheck {
  if (added === undefined || added >= -limit) return c;
  const at = (r?: CaseResult) => `${r!.latency!.latency[k].toFixed(3)} ms`;
  return { ...c, status: 'n/a', note: `direct's ${k} (${at(direct)}) was slower than ${two!.id}'s (${at(two)}): the baseline's window was disturbed` };
}

function proxies(r: CaseResult | undefined): ServerFigures[] {
  return r?.status === 'ok' ? (r.servers ?? []).filter((s) => PROXY_ROLES.includes(s.role)) : [];
}

function worst(r: CaseResult | undefined, k: keyof ServerFigures): number | undefined {
  const ps = proxies(r);
  return ps.length ? Math.max(...ps.map((p) => p[k] as number)) : undefined;
}

function telemetryCostGoal(results: CaseResult[], telemetry: TelemetryCostOutcome | undefined): GoalCheck {
  const goal = 'telemetry cost (metrics, 1% tracing) on max throughput';
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  if (telemetry) {
    const rounds = telemetry.figures?.rounds.length;
    const c = check(goal, '≤ 15%', telemetry.figures?.cost, 0.15, pct, telemetry.reason);
    if (rounds) c.note = `median of ${rounds} alternating rounds`;
    return c;
  }
  // Result files from before the alternating measurement: one case after the other.
  const tOff = find(results, 'rig-1hop-telemetry-off');
  const tOn = find(results, 'rig-1hop-telemetry-on');
  const cost = tOff?.status === 'ok' && tOn?.status === 'ok' ? 1 - tOn.saturation!.rps / tOff.saturation!.rps : undefined;
  return check(goal, '≤ 15%', cost, 0.15, pct, whyNot(tOff, tOn));
}

export function checkGoals(results: CaseResult[], cp: ControlPlaneFigures | null, cpReason: string, telemetry?: TelemetryCostOutcome): GoalCheck[] {
  const direct = find(results, 'direct');
  const out: GoalCheck[] = [];
  for (const id of ['rig-2hop', 'rig-2hop-mtls']) {
    const two = find(results, id);
    const added = (k: 'p50' | 'p90' | 'p99') => (two?.status === 'ok' && direct?.status === 'ok' ? two.latency!.latency[k] - direct.latency!.latency[k] : undefined);
    const label = id === 'rig-2hop' ? 'plaintext' : 'mTLS';
    for (const [k, limit] of [['p50', 0.3], ['p90', 0.5], ['p99', 0.8]] as const) {
      const c = check(`two-hop added latency ${k}, ${label}, 1000 rps`, `≤ +${limit} ms`, added(k), limit, ms, whyNot(direct, two));
      out.push(baselineSlower(c, added(k), limit, k, direct, two));
    }
  }
  const rig1 = find(results, 'rig-1hop');
  const hap1 = find(results, 'haproxy-1hop');
  const ratio = rig1?.status === 'ok' && hap1?.status === 'ok' ? rig1.saturation!.rps / hap1.saturation!.rps : undefined;
  const tp = check('one-hop max throughput vs HAProxy (same run)', '≥ 50%', ratio, 0.5, (v) => `${(v * 100).toFixed(1)}%`, whyNot(rig1, hap1), true);
  const hapIdle = coreIdle(hap1);
  const notes: string[] = [];
  if (hapIdle !== undefined && hapIdle > 0.1) notes.push(`HAProxy's run was client-bound (server core ${(hapIdle * 100).toFixed(0)}% idle): the ratio flatters rig`);
  // What no proxy in Node's event loop exceeds: the gap between the two is the proxy's HTTP work.
  const floor = find(results, 'node-forward-1hop');
  if (floor?.status === 'ok' && hap1?.status === 'ok') notes.push(`a bare Node.js byte forwarder: ${((floor.saturation!.rps / hap1.saturation!.rps) * 100).toFixed(1)}%`);
  if (notes.length) tp.note = notes.join('; ');
  out.push(tp);
  const mb = (v: number) => `${v.toFixed(1)} MB`;
  // Envoy's figures are Istio sidecars (mTLS, telemetry on): those configurations get their own rows.
  const configurations = [
    ['rig-1hop', 'one hop'],
    ['rig-2hop', 'two hops, worst proxy'],
    ['rig-2hop-mtls', 'two hops mTLS, worst proxy'],
    ['rig-1hop-telemetry-on', 'one hop, telemetry on'],
  ] as const;
  for (const [id, label] of configurations) {
    const r = find(results, id);
    out.push(check(`CPU per proxy at 1000 rps (${label})`, '≤ 0.10 vCPU', worst(r, 'vcpuAtRate'), 0.1, (v) => `${v.toFixed(3)} vCPU`, whyNot(r)));
    out.push(check(`RSS per proxy at 1000 rps (${label})`, '≤ 60 MB', worst(r, 'rssAt1000MB'), 60, mb, whyNot(r)));
    out.push(check(`RSS per proxy at saturation (${label})`, '≤ 80 MB', worst(r, 'rssSaturationMB'), 80, mb, whyNot(r)));
  }
  out.push(telemetryCostGoal(results, telemetry));
  const full = cp && cp.proxies >= 2000 && cp.services >= 1000 ? cp : undefined;
  const cpWhy = cp && !full ? `a smaller run (${cp.services} services, ${cp.proxies} proxies) does not test the goal` : cpReason;
  out.push(check('control plane: 2000 proxies ACKed after a change', '≤ 2 s', full?.ackAllMs, 2000, (v) => `${(v / 1000).toFixed(2)} s`, cpWhy));
  out.push(check('control plane RSS at 1000 services / 2000 proxies', '≤ 1 GB', full?.rssMB, 1024, mb, cpWhy));
  return out;
}
