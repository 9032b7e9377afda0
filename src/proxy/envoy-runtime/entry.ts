// One runtime value as Envoy's runtime snapshot holds it: the raw string (what /runtime shows) and
// the typed readings Envoy derives from it (bool, double, uint, FractionalPercent). Static layer
// values come from a protobuf Struct (nested maps flatten to dotted keys; a map holding numerator
// or denominator is a FractionalPercent, as Envoy reserves those two words); disk and admin layer
// values are strings.

export interface RuntimeFractionValue {
  readonly numerator: number;
  readonly denominator: number;
}

export interface RuntimeEntry {
  readonly raw: string;
  readonly bool?: boolean;
  readonly double?: number;
  readonly uint?: number;
  readonly fraction?: RuntimeFractionValue;
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** A disk or admin value: "true"/"false" (any case) is a boolean; otherwise a number when it reads as one. */
export function entryFromString(raw: string): RuntimeEntry {
  const t = raw.trim();
  const lower = t.toLowerCase();
  if (lower === 'true' || lower === 'false') return { raw, bool: lower === 'true' };
  if (t === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return { raw };
  const double = Number(t);
  const uint = /^\+?\d+$/.test(t) && Number.isSafeInteger(double) ? double : undefined;
  return { raw, double, uint };
}

/** A number in a static layer: a double, a uint when non-negative (floored), a boolean when whole (non-zero is true). */
function entryFromNumber(n: number): RuntimeEntry {
  return { raw: String(n), double: n, uint: n >= 0 ? Math.floor(n) : undefined, bool: Number.isInteger(n) ? n !== 0 : undefined };
}

function fractionFromStruct(v: Record<string, unknown>, key: string): RuntimeEntry {
  const numerator = v.numerator ?? 0;
  const dname = v.denominator ?? 'HUNDRED';
  const denominator = typeof dname === 'string' ? DENOMINATORS[dname] : undefined;
  const extra = Object.keys(v).filter((k) => k !== 'numerator' && k !== 'denominator');
  if (typeof numerator !== 'number' || !Number.isInteger(numerator) || numerator < 0 || denominator === undefined || extra.length) {
    throw new Error(`${key}: a map with numerator/denominator is a FractionalPercent: numerator a non-negative integer, denominator HUNDRED, TEN_THOUSAND or MILLION, nothing else`);
  }
  return { raw: JSON.stringify({ numerator, denominator: dname }), fraction: { numerator, denominator } };
}

/**
 * Flattens a static layer (a protobuf Struct as JSON) into key → entry: { a: { b: 1 } } is a.b.
 * Throws on values Envoy refuses (lists, null), naming the key.
 */
export function flattenStruct(v: unknown, out = new Map<string, RuntimeEntry>(), prefix = ''): Map<string, RuntimeEntry> {
  if (v === null || v === undefined) throw new Error(`${prefix || '(root)'}: a runtime value cannot be null`);
  if (Array.isArray(v)) throw new Error(`${prefix || '(root)'}: a runtime value cannot be a list`);
  if (typeof v === 'object') {
    const obj = v as Record<string, unknown>;
    if (prefix && ('numerator' in obj || 'denominator' in obj)) {
      out.set(prefix, fractionFromStruct(obj, prefix));
      return out;
    }
    for (const [k, sub] of Object.entries(obj)) flattenStruct(sub, out, prefix ? `${prefix}.${k}` : k);
    return out;
  }
  if (!prefix) throw new Error('a static layer must be a map of keys');
  if (typeof v === 'boolean') out.set(prefix, { raw: String(v), bool: v });
  else if (typeof v === 'number') out.set(prefix, entryFromNumber(v));
  else out.set(prefix, entryFromString(String(v)));
  return out;
}
