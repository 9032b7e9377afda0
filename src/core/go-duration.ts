// Go durations ("87600h", "1h30m", "10s", "500ms") in environment variables, as Istio's components
// read their knobs (the CA's certificate lifetimes, the agent's Wasm fetch settings).
import { RigError } from './errors.ts';

const UNIT: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3 };

/** A Go duration ("87600h", "1h30m", "10s", "500ms") in seconds; throws naming `where`. */
export function goDurationSeconds(text: string, where: string): number {
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    total += Number(m[1]) * UNIT[m[2]!]!;
    consumed += m[0].length;
  }
  if (!text || consumed !== text.length || total <= 0) throw new RigError('MESH_ERR_USAGE', `${where}: "${text}" is not a positive duration (e.g. 24h, 90m, 30s)`);
  return total;
}

/** Seconds from the environment variable `name` (a Go duration), or `def`. */
export function envDurationSeconds(name: string, def: number, env: NodeJS.ProcessEnv = process.env): number {
  const v = env[name];
  return v === undefined || v === '' ? def : goDurationSeconds(v, name);
}
