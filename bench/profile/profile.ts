// `npm run bench -- --profile`: the one-hop rig proxy at saturation under node --cpu-prof, and
// its top costs by self time, for whoever works on the proxy's hot path.
import { copyFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { CASES } from '../cases/cases.ts';
import type { MeasureSettings } from '../cases/measure.ts';
import type { Server } from '../servers/server.ts';
import { probe } from '../load/probe.ts';
import { saturate } from '../load/saturate.ts';
import { scratchDir } from '../servers/server.ts';
import { rigSourceRoot } from '../servers/rig-proxy.ts';
import { byCategory, selfTimes } from './cpu-profile.ts';

export async function profileCase(m: MeasureSettings, caseId = 'rig-1hop', keepAs?: string, top = 25): Promise<string> {
  const c = CASES.find((x) => x.id === caseId)!;
  const why = c.unavailable();
  if (why) return `Profile of ${caseId}: n/a: ${why}\n`;
  const dir = scratchDir('cpu-prof');
  const started: Server[] = [];
  let rps = 0;
  try {
    const topo = await c.start({ serverCore: m.serverCore, loadCore: m.loadCore, rigNodeFlags: ['--cpu-prof', '--cpu-prof-dir', dir] }, started);
    await probe(c.protocol, topo.entryPort);
    const r = await saturate({ protocol: c.protocol, port: topo.entryPort, connections: m.saturationConnections, threads: m.saturationThreads, durationS: m.saturationS, core: m.loadCore });
    rps = r.rps;
  } finally {
    for (const s of started.reverse()) await s.stop(10_000); // the profile is written on a clean exit
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return `Profile of ${caseId}: no .cpuprofile written (the proxy did not exit cleanly on SIGTERM)\n`;
  const file = path.join(dir, files[0]);
  if (keepAs) copyFileSync(file, keepAs);
  const all = selfTimes(file, rigSourceRoot() + '/');
  const rows = all.slice(0, top);
  const lines = [`## CPU profile: ${caseId} at saturation (${Math.round(rps)} rps, wrk -c${m.saturationConnections}), top ${top} by self time`, '', '| self % | self ms | function | where |', '| --- | --- | --- | --- |'];
  for (const t of rows) lines.push(`| ${(t.share * 100).toFixed(1)} | ${t.ms.toFixed(0)} | ${t.fn} | ${t.where} |`);
  lines.push('', '| self % | where (all functions) |', '| --- | --- |');
  for (const c of byCategory(all)) lines.push(`| ${(c.share * 100).toFixed(1)} | ${c.category} |`);
  lines.push('', 'The whole life of the process is profiled (start-up included); native self time includes the write/read system calls.');
  return lines.join('\n') + '\n';
}
