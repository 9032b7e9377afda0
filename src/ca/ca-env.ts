// The CA's settings from istiod's environment variables (same names and formats, so an Istio
// operator's knobs work here): certificate lifetimes and the self-signed root's rotation.
import { RigError } from '../core/errors.ts';

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

/** A whole percentage (1..99) from the environment variable `name`, or `def`. */
export function envPercent(name: string, def: number, env: NodeJS.ProcessEnv = process.env): number {
  const v = env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 99) throw new RigError('MESH_ERR_USAGE', `${name}: "${v}" is not a percentage between 1 and 99`);
  return n;
}

export const CA_ENV = {
  rootTtl: 'CITADEL_SELF_SIGNED_CA_CERT_TTL',
  rootCheckInterval: 'CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL',
  rootGracePercent: 'CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE',
  workloadTtl: 'DEFAULT_WORKLOAD_CERT_TTL',
  maxWorkloadTtl: 'MAX_WORKLOAD_CERT_TTL',
} as const;
