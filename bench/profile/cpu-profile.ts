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
  /** Share of the busy (non-idle) time. */
  share: number;
}

/** Where a function lives: our code, a dependency, Node's own JavaScript, or native code. */
export function category(where: string): string {
  const file = where.replace(/:\d+$/, '');
  if (file.startsWith('src/') || file.startsWith('dist/')) return file.replace(/^dist\//, 'src/').split('/').slice(0, 3).join('/');
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where);
  if (dep) return `dependency ${dep[1]}`;
  if (where.startsWith('node:')) return 'node core (JavaScript)';
  return 'native (V8 builtins, syscalls, GC)';
}

/** Self time summed per category, largest first. */
export function byCategory(rows: SelfTime[]): { category: string; ms: number; share: number }[] {
  const m = new Map<string, { ms: number; share: number }>();
  for (const r of rows) {
    const c = category(r.where);
    const t = m.get(c) ?? { ms: 0, share: 0 };
    t.ms += r.ms;
    t.share += r.share;
    m.set(c, t);
  }
  return [...m].map(([c, t]) => ({ category: c, ...t })).sort((a, b) => b.ms - a.ms);
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
