// Envoy's FractionalPercent ({ numerator, denominator: HUNDRED | TEN_THOUSAND | MILLION }) and
// RuntimeFractionalPercent ({ default_value, runtime_key }), compiled to a sampler. With a runtime,
// a RuntimeFractionalPercent is a handle (src/proxy/envoy-runtime) whose numerator and denominator
// follow the runtime key's value, so sample() draws against the current value.
import type { Reader } from './reader.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

export interface FractionalPercent {
  readonly numerator: number;
  readonly denominator: number;
}

export const ALWAYS: FractionalPercent = { numerator: 100, denominator: 100 };
export const NEVER: FractionalPercent = { numerator: 0, denominator: 100 };

/** Reads a FractionalPercent; `def` when absent. A numerator above the denominator means 100%. */
export function readFractionalPercent(r: Reader | undefined, def: FractionalPercent): FractionalPercent {
  if (!r) return def;
  const numerator = r.num('numerator', 0);
  const dname = r.str('denominator', 'HUNDRED');
  const denominator = DENOMINATORS[dname];
  if (denominator === undefined) r.issues.error(r.at('denominator'), `unknown denominator "${dname}" (HUNDRED, TEN_THOUSAND or MILLION)`);
  if (numerator < 0 || !Number.isInteger(numerator)) r.issues.error(r.at('numerator'), 'the numerator must be a non-negative integer');
  r.done();
  return { numerator: Math.min(numerator, denominator ?? 100), denominator: denominator ?? 100 };
}

/**
 * Reads a RuntimeFractionalPercent: with `runtime` and a runtime_key, a handle that follows the
 * key (its default_value when no layer sets it); without a runtime, the default_value.
 */
export function readRuntimeFractionalPercent(r: Reader | undefined, def: FractionalPercent, runtime?: EnvoyRuntime): FractionalPercent {
  if (!r) return def;
  const p = readFractionalPercent(r.obj('default_value'), NEVER);
  const key = r.str('runtime_key');
  r.done();
  return runtime && key ? runtime.fraction(key, p) : p;
}

/** One Bernoulli draw: true with probability numerator/denominator. */
export function sample(p: FractionalPercent): boolean {
  if (p.numerator <= 0) return false;
  if (p.numerator >= p.denominator) return true;
  return Math.floor(Math.random() * p.denominator) < p.numerator;
}
