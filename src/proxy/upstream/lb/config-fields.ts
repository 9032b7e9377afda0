// Reading Envoy JSON config fields (proto3 JSON shape, see docs/CONTRACTS.md §1) into plain
// numbers with field paths in every problem: errors reject the config, warnings name fields we
// accept but do not implement. Shared by the load balancers, circuit breakers, outlier detection
// and health checking.
import { parseDuration } from '../../../envoy/index.ts';
import { RigError } from '../../../core/errors.ts';

export interface ConfigIssues {
  errors: string[];
  warnings: string[];
}

export function newIssues(): ConfigIssues {
  return { errors: [], warnings: [] };
}

export type Json = Record<string, unknown>;

/** `compile` over a whole Cluster outside a proxy's config load: errors throw a RigError naming the cluster, warnings are dropped. */
export function compileOrThrow<T>(cluster: Json, compile: (cluster: Json, issues: ConfigIssues) => T): T {
  const issues = newIssues();
  const config = compile(cluster, issues);
  if (issues.errors.length > 0) throw new RigError('MESH_ERR_INVALID_CONFIG', `cluster ${String(cluster.name ?? '')}: ${issues.errors.join('; ')}`);
  return config;
}

export function object(v: unknown, path: string, issues: ConfigIssues): Json | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    issues.errors.push(`${path}: expected an object, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v as Json;
}

export function list(v: unknown, path: string, issues: ConfigIssues): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    issues.errors.push(`${path}: expected a list, got ${JSON.stringify(v)}`);
    return [];
  }
  return v;
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return Number.NaN;
}

/** A non-negative integer (uint32/uint64 field or wrapper; uint64 may come as a string). */
export function uint(o: Json | undefined, key: string, path: string, issues: ConfigIssues, dflt: number): number {
  const v = o?.[key];
  if (v === undefined || v === null) return dflt;
  const n = toNumber(v);
  if (!Number.isInteger(n) || n < 0) {
    issues.errors.push(`${path}.${key}: expected a non-negative integer, got ${JSON.stringify(v)}`);
    return dflt;
  }
  return n;
}

export function double(o: Json | undefined, key: string, path: string, issues: ConfigIssues, dflt: number): number {
  const v = o?.[key];
  if (v === undefined || v === null) return dflt;
  const n = toNumber(v);
  if (!Number.isFinite(n)) {
    issues.errors.push(`${path}.${key}: expected a number, got ${JSON.stringify(v)}`);
    return dflt;
  }
  return n;
}

export function bool(o: Json | undefined, key: string, path: string, issues: ConfigIssues, dflt: boolean): boolean {
  const v = o?.[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') {
    issues.errors.push(`${path}.${key}: expected true or false, got ${JSON.stringify(v)}`);
    return dflt;
  }
  return v;
}

export function string(o: Json | undefined, key: string, path: string, issues: ConfigIssues): string | undefined {
  const v = o?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    issues.errors.push(`${path}.${key}: expected a string, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v;
}

/** envoy.type.v3.Percent (`{ value: 50 }`), as 0..100. */
export function percent(o: Json | undefined, key: string, path: string, issues: ConfigIssues, dflt: number): number {
  const p = object(o?.[key], `${path}.${key}`, issues);
  if (!p) return dflt;
  const n = double(p, 'value', `${path}.${key}`, issues, 0);
  if (n < 0 || n > 100) {
    issues.errors.push(`${path}.${key}.value: must be between 0 and 100, got ${n}`);
    return dflt;
  }
  return n;
}

/** A google.protobuf.Duration ("1.5s") in milliseconds. */
export function durationMs(o: Json | undefined, key: string, path: string, issues: ConfigIssues, dflt: number): number {
  const v = o?.[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'string') {
    issues.errors.push(`${path}.${key}: expected a duration like "1.5s", got ${JSON.stringify(v)}`);
    return dflt;
  }
  try {
    const d = parseDuration(v);
    const ms = d.seconds * 1000 + d.nanos / 1e6;
    if (ms < 0) {
      issues.errors.push(`${path}.${key}: must not be negative, got "${v}"`);
      return dflt;
    }
    return ms;
  } catch (err) {
    issues.errors.push(`${path}.${key}: ${(err as Error).message}`);
    return dflt;
  }
}

/** Warns for every present field of `o` outside `supported`. */
export function warnUnsupported(o: Json | undefined, supported: readonly string[], path: string, issues: ConfigIssues): void {
  if (!o) return;
  for (const k of Object.keys(o)) {
    if (o[k] === undefined || o[k] === null) continue;
    if (!supported.includes(k)) issues.warnings.push(`${path}.${k}: not supported by Rigging, ignored`);
  }
}
