// Reads a V8 .cpuprofile (what node --cpu-prof writes) into self time per function.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  fn: string;
  where: string;
  ms: number;
  /** Share of the busy time (idle and GC-less "program" excluded from nothing: idle only). */
  share: number;
}

export function selfTimes(file: string, stripPrefix = ''): SelfTime[] {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, { fn: string; where: string; us: number }>();
  let busy = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byId.get(prof.samples[i]);
    const us = prof.timeDeltas[i + 1] ?? 0; // the delta after a sample is the time it stands for
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busy += us;
    const where = url ? `${url.replace('file://', '').replace(stripPrefix, '')}:${lineNumber + 1}` : '';
    const key = `${functionName}\0${where}`;
    const t = totals.get(key) ?? { fn: functionName || '(anonymous)', where, us: 0 };
    t.us += us;
    totals.set(key, t);
  }
  return [...totals.values()]
    .sort((a, b) => b.us - a.us)
    .map((t) => ({ fn: t.fn, where: t.where, ms: t.us / 1000, share: busy ? t.us / busy : 0 }));
}
