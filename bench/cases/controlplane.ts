// The control plane's scale benchmark (issue 3 §7) lives in bench/controlplane/, written with
// the control plane. This runs it when it exists at this commit and reports n/a otherwise.
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface ControlPlaneFigures {
  services: number;
  proxies: number;
  /** From the change until every proxy ACKed the new version. */
  ackAllMs: number;
  rssMB: number;
  cpuSeconds?: number;
  [k: string]: unknown;
}

export interface ControlPlaneOutcome {
  figures: ControlPlaneFigures | null;
  reason: string;
}

const ENTRY = path.join(import.meta.dirname, '../controlplane/index.ts');

/** Longest the control plane benchmark may take before it is reported n/a (its processes are stopped at exit). */
const LIMIT_MS = { smoke: 90_000, full: 300_000 };

export async function runControlPlaneBench(opts: { smoke: boolean }): Promise<ControlPlaneOutcome> {
  if (!existsSync(ENTRY)) return { figures: null, reason: 'bench/controlplane/ (the control plane scale benchmark, issue 3) is not in this commit yet' };
  try {
    const mod = (await import(ENTRY)) as { runScaleBench?: (o: { smoke: boolean }) => Promise<ControlPlaneFigures> };
    if (typeof mod.runScaleBench !== 'function') return { figures: null, reason: 'bench/controlplane/index.ts does not export runScaleBench()' };
    const limit = opts.smoke ? LIMIT_MS.smoke : LIMIT_MS.full;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within ${limit / 1000} s`)), limit);
    });
    try {
      return { figures: await Promise.race([mod.runScaleBench(opts), timeout]), reason: '' };
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    return { figures: null, reason: `control plane benchmark failed: ${(err as Error).message}` };
  }
}
