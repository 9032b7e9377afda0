// CPU time and resident memory of a process and its descendants, read from /proc (Linux).
// utime+stime count every thread of a process, so the figures include GC and libuv threads.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** The pid followed by all its descendants (nginx's master forks its worker, for example). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const children = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (children) for (const c of children.split(' ')) out.push(Number(c));
      } catch {
        // the thread ended while we read
      }
    }
  }
  return out;
}

function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after it are space separated.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
  } catch {
    return 0;
  }
}

function rssBytesOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** User + system CPU seconds consumed so far by the process tree rooted at pid. */
export function cpuSeconds(pid: number): number {
  let s = 0;
  for (const p of processTree(pid)) s += cpuSecondsOf(p);
  return s;
}

/** Resident set size in bytes of the process tree rooted at pid. */
export function rssBytes(pid: number): number {
  let s = 0;
  for (const p of processTree(pid)) s += rssBytesOf(p);
  return s;
}

/** Resets the peak-RSS mark (VmHWM) of a process tree (Linux: "5" to clear_refs; needs root or ownership). */
export function resetPeakRss(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      // not permitted or gone: the peak then counts from the process's start
    }
  }
}

/** Peak RSS in bytes since start or the last resetPeakRss, summed over the process tree. */
export function peakRssBytes(pid: number): number {
  let s = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) s += Number(m[1]) * 1024;
    } catch {
      // gone
    }
  }
  return s;
}

/** Busy CPU seconds of one core since boot (everything but idle and iowait), from /proc/stat. */
export function coreBusySeconds(core: number): number {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${core} `));
  if (!line) return NaN;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLOCK_TICKS;
}
