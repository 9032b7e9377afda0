// The CA's settings from istiod's environment variables (same names and formats, so an Istio
// operator's knobs work here): certificate lifetimes and the self-signed root's rotation (durations:
// src/core/go-duration.ts).
import { RigError } from '../core/errors.ts';

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
