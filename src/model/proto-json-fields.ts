// Readers for the fields of a protobuf message written as proto JSON (what Istio's ProxyConfig
// settings are, in MeshConfig and in the proxy.istio.io/config annotation). Each reader validates
// one field, pushes every problem to `errors` under the field's path, and returns the normalised
// value (or undefined): proto JSON's enum numbers, string integers and `{ value }` wrappers are
// accepted, as Istio's parser does.

export type FieldReader = (v: unknown, at: string, errors: string[]) => unknown;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A google.protobuf.BoolValue in proto JSON: a bare boolean (a `{ value }` object is accepted too). */
export const bool: FieldReader = (v, at, errors) => {
  const b = isObject(v) && Object.keys(v).length === 1 && 'value' in v ? v.value : v;
  if (typeof b === 'boolean') return b;
  errors.push(`${at}: expected true or false, got ${JSON.stringify(v)}`);
  return undefined;
};

export const string: FieldReader = (v, at, errors) => {
  if (typeof v === 'string') return v;
  errors.push(`${at}: expected a string, got ${JSON.stringify(v)}`);
  return undefined;
};

const UINT32_MAX = 0xffffffff;

/** A uint32 (a number, or a string of digits as proto JSON allows); `meaning` explains it in the error. */
export function uint32(meaning: string): FieldReader {
  return (v, at, errors) => {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= UINT32_MAX) return n;
    errors.push(`${at}: expected a whole number from 0 to ${UINT32_MAX} (${meaning}), got ${JSON.stringify(v)}`);
    return undefined;
  };
}

/** A proto enum in JSON: its name or its number. */
export function enumOf(names: readonly string[]): FieldReader {
  return (v, at, errors) => {
    const name = typeof v === 'number' ? names[v] : v;
    if (typeof name === 'string' && names.includes(name)) return name;
    errors.push(`${at}: expected one of ${names.join(', ')}, got ${JSON.stringify(v)}`);
    return undefined;
  };
}

/** A message with no fields (e.g. Istio's ProxyProtocol): `{}`. */
export function emptyMessage(name: string): FieldReader {
  return (v, at, errors) => {
    if (isObject(v) && Object.keys(v).length === 0) return {};
    errors.push(`${at}: expected {} (${name} has no fields), got ${JSON.stringify(v)}`);
    return undefined;
  };
}

/**
 * A message: each known field read by its reader, an unknown field refused with the list of the
 * known ones, a field in `unsupported` refused with its reason. A null field is left unset.
 */
export function message(fields: Record<string, FieldReader>, unsupported: Record<string, string> = {}): FieldReader {
  return (v, at, errors) => {
    if (!isObject(v)) {
      errors.push(`${at}: expected an object { ${Object.keys(fields).join(', ')} }, got ${JSON.stringify(v)}`);
      return undefined;
    }
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
      const read = fields[k];
      if (unsupported[k] !== undefined) errors.push(`${at}.${k}: not supported: ${unsupported[k]}`);
      else if (!read) errors.push(`${at}.${k}: unknown field (known: ${Object.keys(fields).join(', ')})`);
      else if (val !== null) {
        const got = read(val, `${at}.${k}`, errors);
        if (got !== undefined) out[k] = got;
      }
    }
    return out;
  };
}
