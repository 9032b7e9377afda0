// Runtime handles: what a compiled config holds instead of a runtime key. A consumer asks the
// runtime for one at config compile time (runtime.fraction(key, default) ...); the runtime sets
// its fields again whenever its snapshot changes, so a request reads a field, never looks a key up.
// The readings are Envoy's Snapshot ones: featureEnabled, getInteger, getBoolean, getDouble.
import type { RuntimeEntry } from './entry.ts';

export abstract class RuntimeHandle {
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }
  /** Takes the key's entry in the new snapshot (undefined when no layer sets it). */
  abstract refresh(e: RuntimeEntry | undefined): void;
}

/**
 * RuntimeFractionalPercent (featureEnabled with a FractionalPercent default): a FractionalPercent
 * value wins; a whole number is a percentage (above 100: always); otherwise the default. Shaped as
 * a FractionalPercent, so `sample(handle)` draws against the current value.
 */
export class RuntimeFraction extends RuntimeHandle {
  readonly def: { readonly numerator: number; readonly denominator: number };
  numerator: number;
  denominator: number;
  /** A layer sets the key (featureEnabled with a default known only per request: use the handle when set). */
  overridden = false;
  constructor(key: string, def: { readonly numerator: number; readonly denominator: number }) {
    super(key);
    this.def = def;
    this.numerator = def.numerator;
    this.denominator = def.denominator;
  }
  refresh(e: RuntimeEntry | undefined): void {
    const p = fractionOf(e, this.def);
    this.overridden = p !== this.def;
    this.numerator = p.numerator;
    this.denominator = p.denominator;
  }
}

/** featureEnabled's percentage for an entry (see RuntimeFraction); for keys built per request. */
export function fractionOf(e: RuntimeEntry | undefined, def: { readonly numerator: number; readonly denominator: number }): { readonly numerator: number; readonly denominator: number } {
  if (e?.fraction) return { numerator: Math.min(e.fraction.numerator, e.fraction.denominator), denominator: e.fraction.denominator };
  if (e?.uint !== undefined) return { numerator: Math.min(e.uint, 100), denominator: 100 };
  return def;
}

/** getInteger: the key's unsigned integer value, or the default. `max` bounds it (RuntimeUInt32: above it, the default). */
export class RuntimeUint extends RuntimeHandle {
  readonly def: number;
  private readonly max: number;
  /** The runtime's value when a layer sets the key to an unsigned integer. */
  override: number | undefined;
  value: number;
  constructor(key: string, def: number, max = Number.MAX_SAFE_INTEGER) {
    super(key);
    this.def = def;
    this.max = max;
    this.value = def;
  }
  refresh(e: RuntimeEntry | undefined): void {
    this.override = e?.uint !== undefined && e.uint <= this.max ? e.uint : undefined;
    this.value = this.override ?? this.def;
  }
  /** getInteger(key, def) with a default known only per request (e.g. a status from a header). */
  valueOr(def: number): number {
    return this.override ?? def;
  }
}

/** RuntimeFeatureFlag (getBoolean): true/false from the runtime (a whole number: non-zero), or the default. */
export class RuntimeBool extends RuntimeHandle {
  readonly def: boolean;
  value: boolean;
  constructor(key: string, def: boolean) {
    super(key);
    this.def = def;
    this.value = def;
  }
  refresh(e: RuntimeEntry | undefined): void {
    this.value = e?.bool ?? this.def;
  }
}

/** RuntimeDouble (getDouble) and, with `percent`, RuntimePercent: a value outside [0, 100] keeps the default. */
export class RuntimeDouble extends RuntimeHandle {
  readonly def: number;
  private readonly percent: boolean;
  value: number;
  constructor(key: string, def: number, percent = false) {
    super(key);
    this.def = def;
    this.percent = percent;
    this.value = def;
  }
  refresh(e: RuntimeEntry | undefined): void {
    const v = e?.double;
    this.value = v === undefined || (this.percent && (v < 0 || v > 100)) ? this.def : v;
  }
}
