// Reads one Envoy JSON object while compiling it: every field the compiler reads is marked, and
// whatever it did not read is reported as a warning ("not supported, ignored") when the object is
// closed. So an unsupported field is never silently ignored. Errors and warnings carry field paths.
import { parseDuration } from '../../envoy/index.ts';

export type Json = Record<string, unknown>;

/** Errors (→ NACK) and warnings (→ logged, config still applied) found while compiling one update. */
export class Issues {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  error(path: string, message: string): void {
    this.errors.push(`${path || '(root)'}: ${message}`);
  }
  warn(path: string, message: string): void {
    this.warnings.push(`${path || '(root)'}: ${message}`);
  }
}

function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function join(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

export class Reader {
  readonly path: string;
  readonly issues: Issues;
  readonly raw: Json;
  private readonly used = new Set<string>();

  constructor(raw: unknown, path: string, issues: Issues) {
    this.path = path;
    this.issues = issues;
    if (raw === null || raw === undefined) raw = {};
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      issues.error(path, `expected an object, got ${Array.isArray(raw) ? 'a list' : typeof raw}`);
      raw = {};
    }
    this.raw = raw as Json;
  }

  at(key: string | number): string {
    return join(this.path, key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** The raw value of a field (snake_case or lowerCamelCase), marking it read. */
  get(key: string): unknown {
    let v = this.raw[key];
    if (v === undefined) {
      const c = camel(key);
      if (c !== key) {
        v = this.raw[c];
        if (v !== undefined) this.used.add(c);
      }
    } else this.used.add(key);
    return v === null ? undefined : v;
  }

  /** Marks fields as read without using them (accepted and deliberately without effect). */
  accept(...keys: string[]): void {
    for (const k of keys) this.get(k);
  }

  str(key: string, def = ''): string {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    this.issues.error(this.at(key), `expected a string`);
    return def;
  }

  num(key: string, def: number): number {
    let v = this.get(key);
    if (v && typeof v === 'object' && 'value' in (v as Json)) v = (v as Json).value;
    if (v === undefined) return def;
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || Number.isNaN(n)) {
      this.issues.error(this.at(key), `expected a number`);
      return def;
    }
    return n;
  }

  bool(key: string, def: boolean): boolean {
    let v = this.get(key);
    if (v && typeof v === 'object' && 'value' in (v as Json)) v = (v as Json).value;
    if (v === undefined) return def;
    if (typeof v !== 'boolean') {
      this.issues.error(this.at(key), `expected true or false`);
      return def;
    }
    return v;
  }

  /** A google.protobuf.Duration in milliseconds, or `def` when absent. */
  durationMs(key: string, def: number): number {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v === 'string') {
      try {
        const d = parseDuration(v);
        return d.seconds * 1000 + d.nanos / 1e6;
      } catch (e) {
        this.issues.error(this.at(key), (e as Error).message);
        return def;
      }
    }
    if (typeof v === 'object' && v) {
      const o = v as Json;
      return Number(o.seconds ?? 0) * 1000 + Number(o.nanos ?? 0) / 1e6;
    }
    this.issues.error(this.at(key), `expected a duration such as "1.5s"`);
    return def;
  }

  /** A nested object as a Reader (closed by the caller), or undefined when absent. */
  obj(key: string): Reader | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    return new Reader(v, this.at(key), this.issues);
  }

  list(key: string): unknown[] {
    const v = this.get(key);
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.issues.error(this.at(key), `expected a list`);
      return [];
    }
    return v;
  }

  /** Readers over a list of objects. */
  objs(key: string): Reader[] {
    const p = this.at(key);
    return this.list(key).map((v, i) => new Reader(v, join(p, i), this.issues));
  }

  strs(key: string): string[] {
    return this.list(key).map((v) => String(v));
  }

  /** Reports every field that was present but not read as unsupported. */
  done(): void {
    for (const k of Object.keys(this.raw)) {
      if (!this.used.has(k) && this.raw[k] !== null && this.raw[k] !== undefined && k !== '@type') {
        this.issues.warn(this.at(k), `field "${k}" is not supported by rig proxy and is ignored`);
      }
    }
  }

  /** Marks a whole subtree as read (opaque data such as metadata). */
  opaque(key: string): unknown {
    return this.get(key);
  }
}
