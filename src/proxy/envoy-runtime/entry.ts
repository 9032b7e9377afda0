// One runtime value as Envoy's runtime snapshot holds it: the raw string (what /runtime shows) and
// the typed readings Envoy derives from it (bool, double, uint, FractionalPercent). Static and RTDS
// layers give a protobuf Struct: nested maps flatten to dotted keys, and a map holding numerator or
// denominator (or an empty one) is one value. Disk files and /runtime_modify values are read as
// YAML, as Envoy does: "100" is a number, "true" a boolean, "{numerator: 5}" a FractionalPercent.
import { parseYaml } from '../bootstrap/yaml-file.ts';

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
const NUMBER = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/** A number: a double, a uint when non-negative (floored), a boolean when whole (non-zero is true). */
function numberEntry(raw: string, n: number): RuntimeEntry {
  return { raw, double: n, ...(n >= 0 && { uint: Math.floor(n) }), ...(Number.isInteger(n) && { bool: n !== 0 }) };
}

/** A string value: a number when it reads as one; "true"/"false" in any case a boolean. */
function stringEntry(s: string, raw = s): RuntimeEntry {
  if (NUMBER.test(s)) return numberEntry(raw, Number(s));
  const t = s.trim().toLowerCase();
  if (t === 'true' || t === 'false') return { raw, bool: t === 'true' };
  return { raw };
}

/** A map value: a FractionalPercent when it has only numerator (a number) and denominator (a known name). */
function structEntry(v: Record<string, unknown>, raw: string): RuntimeEntry {
  let numerator = 0;
  let denominator = 100;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'numerator') {
      if (typeof x === 'number') numerator = Math.max(0, Math.floor(x));
    } else if (k === 'denominator' && typeof x === 'string') {
      const d = DENOMINATORS[x];
      if (d === undefined) return { raw };
      denominator = d;
    } else return { raw };
  }
  return { raw, fraction: { numerator, denominator } };
}

function valueEntry(v: unknown, raw: string | undefined, key: string): RuntimeEntry {
  if (typeof v === 'number') return numberEntry(raw ?? String(v), v);
  if (typeof v === 'boolean') return { raw: raw ?? String(v), bool: v };
  if (typeof v === 'string') return stringEntry(v, raw ?? v);
  if (v && typeof v === 'object' && !Array.isArray(v)) return structEntry(v as Record<string, unknown>, raw ?? JSON.stringify(v));
  throw new Error(`${key || '(root)'}: a runtime value cannot be ${Array.isArray(v) ? 'a list' : 'null'}`);
}

/** A disk file's or an admin value's text, read as YAML (text that is no valid YAML stays a string). */
export function entryFromText(raw: string): RuntimeEntry {
  let v: unknown;
  try {
    v = parseYaml(raw);
  } catch {
    return stringEntry(raw);
  }
  return v === null || v === undefined || Array.isArray(v) ? { raw } : valueEntry(v, raw, '');
}

/**
 * Flattens a static or RTDS layer (a protobuf Struct as JSON) into key → entry: { a: { b: 1 } } is
 * a.b. Throws on values Envoy refuses (lists, null), naming the key.
 */
export function flattenStruct(v: unknown, out = new Map<string, RuntimeEntry>(), prefix = ''): Map<string, RuntimeEntry> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (prefix && (keys.length === 0 || 'numerator' in obj || 'denominator' in obj)) {
      out.set(prefix, structEntry(obj, JSON.stringify(obj)));
      return out;
    }
    for (const k of keys) flattenStruct(obj[k], out, prefix ? `${prefix}.${k}` : k);
    return out;
  }
  if (!prefix) throw new Error('a runtime layer must be a map of keys');
  out.set(prefix, valueEntry(v, undefined, prefix));
  return out;
}
