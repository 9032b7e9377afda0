// protobufjs converts Google's well-known types field by field; Envoy's YAML and JSON use the
// proto3 JSON mapping instead. These wrappers make fromObject/toObject speak that mapping, so
// one object shape serves bootstrap files, xDS resources and config_dump alike.
import protobuf from 'protobufjs';

type Wrapper = { fromObject: (this: protobuf.Type, o: unknown) => protobuf.Message; toObject: (this: protobuf.Type, m: protobuf.Message, opts?: protobuf.IConversionOptions) => unknown };

const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

/** Parses a proto3 JSON duration ("1.5s") into seconds and nanos; throws on anything else. */
export function parseDuration(text: string): { seconds: number; nanos: number } {
  const m = DURATION.exec(text);
  if (!m) throw new Error(`invalid duration "${text}": expected a number of seconds with suffix "s", e.g. "0.25s"`);
  const sign = m[1] ? -1 : 1;
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  return { seconds: sign * Number(m[2]), nanos: sign * nanos };
}

export function formatDuration(seconds: number, nanos: number): string {
  const neg = seconds < 0 || nanos < 0;
  const s = Math.abs(seconds);
  const n = Math.abs(nanos);
  const frac = n === 0 ? '' : '.' + String(n).padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${s}${frac}s`;
}

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number.NaN;
}

function scalarWrapper(kind: 'number' | 'bool' | 'string' | 'bytes'): Wrapper {
  return {
    fromObject(o) {
      if (o !== null && typeof o === 'object' && !(o instanceof Uint8Array)) return this.fromObject(o as Record<string, unknown>);
      if (kind === 'number') {
        const n = num(o);
        if (Number.isNaN(n)) throw new TypeError(`${this.fullName.slice(1)}: expected a number, got ${JSON.stringify(o)}`);
        return this.create({ value: n });
      }
      if (kind === 'bool') {
        if (typeof o !== 'boolean') throw new TypeError(`${this.fullName.slice(1)}: expected true or false, got ${JSON.stringify(o)}`);
        return this.create({ value: o });
      }
      if (kind === 'bytes') return this.create({ value: typeof o === 'string' ? Buffer.from(o, 'base64') : o });
      return this.create({ value: String(o) });
    },
    toObject(m, opts) {
      const v = (m as unknown as { value?: unknown }).value;
      if (kind === 'number') return v === undefined ? 0 : num(v);
      if (kind === 'bool') return Boolean(v);
      if (kind === 'bytes') return opts?.bytes === String ? Buffer.from((v as Uint8Array) ?? []).toString('base64') : v;
      return v ?? '';
    },
  };
}

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

// Nested Struct/ListValue messages are converted by their own wrappers first, so a decoded
// Value already holds JSON in struct_value / list_value.
function valueToJson(v: Record<string, unknown> | undefined): JsonValue {
  if (!v) return null;
  // protobufjs bundles struct.proto with lowerCamelCase field names.
  if (v.numberValue !== undefined && v.numberValue !== null) return Number(v.numberValue);
  if (v.stringValue !== undefined && v.stringValue !== null) return String(v.stringValue);
  if (v.boolValue !== undefined && v.boolValue !== null) return Boolean(v.boolValue);
  if (v.structValue !== undefined) return v.structValue as JsonValue;
  if (v.listValue !== undefined) return v.listValue as JsonValue;
  return null;
}

const RAW = { longs: Number, enums: String, bytes: String, defaults: false, arrays: false, objects: false } as const;

let installed = false;

const typeNameOf = (typeUrl: string) => typeUrl.slice(typeUrl.lastIndexOf('/') + 1);

/**
 * Installs the proto3-JSON wrappers; must run before any .proto is loaded. Idempotent.
 * `loadType` makes a type named by an Any's type URL available before protobufjs looks it up.
 */
export function installJsonWrappers(loadType: (fullName: string) => void): void {
  if (installed) return;
  installed = true;
  const w = protobuf.wrappers as Record<string, Wrapper>;
  const any = w['.google.protobuf.Any'];
  w['.google.protobuf.Any'] = {
    fromObject(o, ...rest: unknown[]) {
      const url = (o as { '@type'?: unknown } | null)?.['@type'];
      if (typeof url === 'string') loadType(typeNameOf(url));
      return (any.fromObject as (...a: unknown[]) => protobuf.Message).call(this, o, ...rest);
    },
    toObject(m, opts, ...rest: unknown[]) {
      const url = (m as { type_url?: unknown }).type_url;
      if (opts?.json && typeof url === 'string' && url) {
        loadType(typeNameOf(url));
        // A well-known type whose JSON is not an object (StringValue, Duration...) goes under "value",
        // as proto3 JSON writes it (protobufjs would try to set "@type" on the bare value).
        if (url.includes('/google.protobuf.')) {
          const t = this.lookup(typeNameOf(url)) as protobuf.Type | null;
          const inner = t?.toObject(t.decode((m as unknown as { value: Uint8Array }).value), opts);
          if (t && (inner === null || typeof inner !== 'object' || Array.isArray(inner))) return { '@type': url, value: inner };
        }
      }
      return (any.toObject as (...a: unknown[]) => unknown).call(this, m, opts, ...rest);
    },
  };
  w['.google.protobuf.Duration'] = {
    fromObject(o) {
      if (typeof o === 'string') return this.create(parseDuration(o));
      return this.fromObject(o as Record<string, unknown>);
    },
    toObject(m) {
      const d = this.toObject(m, RAW) as { seconds?: number; nanos?: number };
      return formatDuration(Number(d.seconds ?? 0), Number(d.nanos ?? 0));
    },
  };
  w['.google.protobuf.Timestamp'] = {
    fromObject(o) {
      if (typeof o === 'string') {
        const ms = Date.parse(o);
        if (Number.isNaN(ms)) throw new TypeError(`invalid timestamp "${o}": expected RFC 3339`);
        return this.create({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
      }
      return this.fromObject(o as Record<string, unknown>);
    },
    toObject(m) {
      const t = this.toObject(m, RAW) as { seconds?: number; nanos?: number };
      return new Date(Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6)).toISOString();
    },
  };
  for (const t of ['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value']) w[`.google.protobuf.${t}`] = scalarWrapper('number');
  w['.google.protobuf.BoolValue'] = scalarWrapper('bool');
  w['.google.protobuf.StringValue'] = scalarWrapper('string');
  w['.google.protobuf.BytesValue'] = scalarWrapper('bytes');
  w['.google.protobuf.Struct'] = {
    fromObject(o) {
      return this.fromObject(o as Record<string, unknown>);
    },
    toObject(m, opts) {
      const s = this.toObject(m, { ...opts, defaults: false, oneofs: false }) as { fields?: Record<string, JsonValue> };
      return s.fields ?? {};
    },
  };
  w['.google.protobuf.Value'] = {
    fromObject(o) {
      return this.fromObject(o as Record<string, unknown>);
    },
    toObject(m, opts) {
      return valueToJson(this.toObject(m, { ...opts, defaults: false, oneofs: false }) as Record<string, unknown>);
    },
  };
  w['.google.protobuf.ListValue'] = {
    fromObject(o) {
      return this.fromObject(o as Record<string, unknown>);
    },
    toObject(m, opts) {
      const l = this.toObject(m, { ...opts, defaults: false, oneofs: false }) as { values?: JsonValue[] };
      return l.values ?? [];
    },
  };
}
