// bench/results/<date>-<short commit>.json (every figure) and .md (the summary). Earlier files
// stay, so regressions show across commits.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CaseResult, MeasureSettings } from '../cases/measure.ts';
import type { MachineInfo } from '../lib/machine.ts';
import type { GoalCheck } from './goals.ts';
import type { ControlPlaneOutcome } from '../cases/controlplane.ts';
import type { TelemetryCostOutcome } from '../cases/telemetry-cost.ts';

export interface BenchRun {
  date: string;
  commit: string;
  dirty: boolean;
  smoke: boolean;
  machine: MachineInfo;
  loadAverage: { before: string; after: string };
  settings: MeasureSettings;
  results: CaseResult[];
  controlPlane: ControlPlaneOutcome;
  /** Absent in result files written before it was measured (their pair of telemetry cases gives the cost). */
  telemetryCost?: TelemetryCostOutcome;
  goals: GoalCheck[];
}

export const RESULTS_DIR = path.join(import.meta.dirname, '../results');

export function writeResultFiles(run: BenchRun, markdown: string, dir = RESULTS_DIR): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `${run.date}-${run.commit}${run.dirty ? '-dirty' : ''}`);
  writeFileSync(`${base}.json`, JSON.stringify(run, null, 2) + '\n');
  writeFileSync(`${base}.md`, markdown);
  return { json: `${base}.json`, md: `${base}.md` };
}
