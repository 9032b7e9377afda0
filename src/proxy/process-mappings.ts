// This process's memory mappings with their residency, from /proc/self/smaps (Linux only).
import { readFileSync } from 'node:fs';

export interface Mapping {
  start: number;
  end: number;
  perms: string;
  /** The mapped file, '' for anonymous memory, or a pseudo-name such as [heap] or [stack]. */
  path: string;
  rssKb: number;
  /** Pages the process wrote (copy-on-write); dropping them would lose their contents. */
  privateDirtyKb: number;
  anonymousKb: number;
}

/** The mappings, or undefined where /proc/self/smaps does not exist. */
export function processMappings(): Mapping[] | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return undefined;
  }
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, path: head[4]!, rssKb: 0, privateDirtyKb: 0, anonymousKb: 0 };
      out.push(cur);
      continue;
    }
    const field = /^(Rss|Private_Dirty|Anonymous):\s+(\d+) kB/.exec(line);
    if (!field || !cur) continue;
    const kb = Number(field[2]);
    if (field[1] === 'Rss') cur.rssKb = kb;
    else if (field[1] === 'Private_Dirty') cur.privateDirtyKb = kb;
    else cur.anonymousKb = kb;
  }
  return out;
}
