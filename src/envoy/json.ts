// The proto3 JSON mapping, read into protobufjs-ready objects: Envoy's YAML and xDS JSON use
// durations as "1.5s", wrappers as plain values, Struct as JSON, Any with "@type", enums by name,
// and field names in snake_case or lowerCamelCase. protobufjs' own fromObject accepts none of the
// well-known JSON forms and silently drops unknown fields, so this walk does both, collecting every
// problem with its field path (an unknown field is an error, as it is for Envoy).
import protobuf from 'protobufjs';
import { parseDuration } from './wkt-json.ts';
import { rootWith } from './protos.ts';

export interface JsonIssue {
  path: string;
  message: string;
  /**
   * A form Envoy's config file parser accepts (a single value where a list belongs, an enum name
   * in another case): rewrites it in the checked object to the canonical form.
   */
  rewrite?: () => void;
}

export class EnvoyJsonError extends Error {
  readonly issues: JsonIssue[];
  constructor(typeName: string, issues: JsonIssue[]) {
    super(`invalid ${typeName}: ` + issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; '));
    this.issues = issues;
  }
}

const NUMBER_WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value']);
const INT_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

const UNKNOWN_TYPE = 'unknown or unsupported type';

function join(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

function scalar(field: protobuf.Field, v: unknown, path: string, issues: JsonIssue[]): unknown {
  const t = field.type;
  if (field.resolvedType instanceof protobuf.Enum) {
    const e = field.resolvedType;
    if (typeof v === 'string') {
      if (e.values[v] === undefined) issues.push({ path, message: `unknown value "${v}"; expected one of ${Object.keys(e.values).join(', ')}` });
      return v;
    }
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    issues.push({ path, message: `expected an enum name, got ${typeOf(v)}` });
    return undefined;
  }
  if (t === 'string') {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    issues.push({ path, message: `expected a string, got ${typeOf(v)}` });
    return undefined;
  }
  if (t === 'bool') {
    if (typeof v === 'boolean') return v;
    issues.push({ path, message: `expected true or false, got ${typeOf(v)}` });
    return undefined;
  }
  if (t === 'bytes') {
    if (typeof v === 'string') return Buffer.from(v, 'base64');
    if (v instanceof Uint8Array) return v;
    issues.push({ path, message: `expected base64 bytes, got ${typeOf(v)}` });
    return undefined;
  }
  if (INT_TYPES.has(t) || t === 'double' || t === 'float') {
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || Number.isNaN(n) || (INT_TYPES.has(t) && !Number.isInteger(n))) {
      issues.push({ path, message: `expected ${INT_TYPES.has(t) ? 'an integer' : 'a number'}, got ${typeOf(v)}` });
      return undefined;
    }
    if (t.startsWith('uint') && n < 0) issues.push({ path, message: `expected a non-negative integer, got ${n}` });
    return n;
  }
  issues.push({ path, message: `unsupported field type ${t}` });
  return undefined;
}

function jsonValue(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonValue) } };
  return { structValue: jsonStruct(v as Record<string, unknown>) };
}

function jsonStruct(o: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = jsonValue(v);
  return { fields };
}

function wellKnown(type: protobuf.Type, v: unknown, path: string, issues: JsonIssue[]): { handled: boolean; value?: unknown } {
  const name = type.fullName.startsWith('.google.protobuf.') ? type.fullName.slice('.google.protobuf.'.length) : '';
  if (!name) return { handled: false };
  if (name === 'Duration') {
    if (typeof v !== 'string') return { handled: false };
    try {
      return { handled: true, value: parseDuration(v) };
    } catch (e) {
      issues.push({ path, message: (e as Error).message });
      return { handled: true };
    }
  }
  if (name === 'Timestamp' && typeof v === 'string') {
    const ms = Date.parse(v);
    if (Number.isNaN(ms)) {
      issues.push({ path, message: `invalid timestamp "${v}": expected RFC 3339` });
      return { handled: true };
    }
    return { handled: true, value: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } };
  }
  if (NUMBER_WRAPPERS.has(name) && (typeof v === 'number' || typeof v === 'string')) {
    const n = Number(v);
    if (Number.isNaN(n)) issues.push({ path, message: `expected a number, got ${typeOf(v)}` });
    return { handled: true, value: { value: n } };
  }
  if (name === 'BoolValue' && typeof v === 'boolean') return { handled: true, value: { value: v } };
  if (name === 'StringValue' && typeof v === 'string') return { handled: true, value: { value: v } };
  if (name === 'BytesValue' && typeof v === 'string') return { handled: true, value: { value: Buffer.from(v, 'base64') } };
  if (name === 'Struct' && v && typeof v === 'object' && !Array.isArray(v)) return { handled: true, value: jsonStruct(v as Record<string, unknown>) };
  if (name === 'Value') return { handled: true, value: jsonValue(v) };
  if (name === 'ListValue' && Array.isArray(v)) return { handled: true, value: { values: v.map(jsonValue) } };
  if (name === 'Any' && v && typeof v === 'object' && '@type' in (v as object)) {
    const { '@type': typeUrl, ...rest } = v as Record<string, unknown>;
    if (typeof typeUrl !== 'string') {
      issues.push({ path: join(path, '@type'), message: 'expected a type URL string' });
      return { handled: true };
    }
    const inner = lookupMessage(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
    if (!inner) {
      issues.push({ path: join(path, '@type'), message: `${UNKNOWN_TYPE} "${typeUrl}"` });
      return { handled: true };
    }
    // A well-known type inside Any carries its JSON form under "value".
    const body = inner.fullName.startsWith('.google.protobuf.') && 'value' in rest ? rest.value : rest;
    const from = issues.length;
    const obj = fromJson(inner, body, path, issues);
    // A rewrite of one of the Any's own fields changed the copy `rest`: it goes into the config too
    // (else checkMessage would find the same form again, for ever: codec_type: auto in an HCM).
    for (let i = from; i < issues.length; i++) {
      const rewrite = issues[i]!.rewrite;
      if (rewrite && body === rest)
        issues[i]!.rewrite = () => {
          rewrite();
          Object.assign(v, rest);
        };
    }
    return { handled: true, value: { type_url: typeUrl, value: inner.encode(inner.fromObject(obj)).finish() } };
  }
  return { handled: false };
}

function lookupMessage(name: string): protobuf.Type | undefined {
  try {
    const t = rootWith(name).lookup(name);
    return t instanceof protobuf.Type ? t : undefined;
  } catch {
    return undefined;
  }
}

function fieldValue(field: protobuf.Field, v: unknown, path: string, issues: JsonIssue[]): unknown {
  if (field.resolvedType instanceof protobuf.Type) return fromJson(field.resolvedType, v, path, issues);
  return scalar(field, v, path, issues);
}

const fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function fieldsByName(type: protobuf.Type): Map<string, protobuf.Field> {
  let idx = fieldIndex.get(type);
  if (!idx) {
    idx = new Map();
    for (const f of type.fieldsArray) {
      f.resolve();
      idx.set(f.name, f);
      idx.set(f.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()), f);
    }
    fieldIndex.set(type, idx);
  }
  return idx;
}

/**
 * Reads a proto3-JSON value of `type` into an object that protobufjs' fromObject accepts,
 * appending every problem to `issues` (the walk goes on after an error to report them all).
 */
export function fromJson(type: protobuf.Type, value: unknown, path: string, issues: JsonIssue[]): Record<string, unknown> {
  const wk = wellKnown(type, value, path, issues);
  if (wk.handled) return (wk.value ?? {}) as Record<string, unknown>;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    issues.push({ path, message: `expected an object (${type.fullName.slice(1)}), got ${typeOf(value)}` });
    return {};
  }
  const out: Record<string, unknown> = {};
  const fields = fieldsByName(type);
  const oneofSeen = new Map<string, string>();
  const firstIssue = issues.length;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const field = fields.get(key);
    const p = join(path, key);
    if (!field) {
      issues.push({ path: p, message: `unknown field "${key}" in ${type.fullName.slice(1)}` });
      continue;
    }
    if (v === null || v === undefined) continue;
    if (field.partOf) {
      const other = oneofSeen.get(field.partOf.name);
      if (other) issues.push({ path: p, message: `"${key}" and "${other}" are alternatives (oneof ${field.partOf.name}); set only one` });
      oneofSeen.set(field.partOf.name, key);
    }
    if (field.map) {
      if (typeof v !== 'object' || Array.isArray(v)) {
        issues.push({ path: p, message: `expected a map (object), got ${typeOf(v)}` });
        continue;
      }
      const m: Record<string, unknown> = {};
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) m[mk] = fieldValue(field, mv, join(p, mk), issues);
      out[field.name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(v)) {
        const obj = value as Record<string, unknown>;
        issues.push({ path: p, message: `expected a list, got ${typeOf(v)}`, rewrite: () => (obj[key] = [v]) });
        continue;
      }
      out[field.name] = v.map((item, i) => enumCase(field, v, i, join(p, i), issues) ?? fieldValue(field, item, join(p, i), issues));
    } else {
      out[field.name] = enumCase(field, value as Record<string, unknown>, key, p, issues) ?? fieldValue(field, v, p, issues);
    }
  }
  if ((value as Record<string, unknown>).is_optional === true && fields.has('is_optional')) dropOptionalUnknownTypes(issues, firstIssue, path);
  return out;
}

/** An enum name in another case than the proto's (Envoy parses enums case-insensitively): the issue that rewrites it. */
function enumCase(field: protobuf.Field, holder: Record<string, unknown> | unknown[], key: string | number, path: string, issues: JsonIssue[]): string | undefined {
  const v = (holder as Record<string | number, unknown>)[key];
  if (!(field.resolvedType instanceof protobuf.Enum) || typeof v !== 'string' || field.resolvedType.values[v] !== undefined) return undefined;
  const upper = v.toUpperCase();
  if (field.resolvedType.values[upper] === undefined) return undefined;
  issues.push({ path, message: `unknown value "${v}"; expected ${upper} (enum names are upper case)`, rewrite: () => ((holder as Record<string | number, unknown>)[key] = upper) });
  return upper;
}

/**
 * An extension marked is_optional (an HTTP or listener filter, a per-route FilterConfig) may be of
 * a type this build does not know: Envoy accepts the config, and the filter's reader skips it with
 * a warning. Its own fields are not checked then.
 */
function dropOptionalUnknownTypes(issues: JsonIssue[], from: number, path: string): void {
  const ownAny = new Set(['typed_config', 'config'].map((k) => join(join(path, k), '@type')));
  for (let i = issues.length - 1; i >= from; i--) if (ownAny.has(issues[i]!.path) && issues[i]!.message.startsWith(UNKNOWN_TYPE)) issues.splice(i, 1);
}
