// Istio's CEL rules: the `x-kubernetes-validations` of the CRD schemas, evaluated as the
// Kubernetes API server does (self = the field's value), with Kubernetes' CEL extensions that the
// rules use (url(), isURL()). Rules are compiled once, at first use.
import { Environment } from '@marcbachmann/cel-js';
import { parseCel, withRe2Matches } from '../../core/cel-re2.ts';
import type { Reporter } from './reporter.ts';

interface Rule {
  rule: string;
  message?: string;
  fieldPath?: string;
}

interface SchemaNode {
  'x-kubernetes-validations'?: Rule[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
}

/** Kubernetes' URL: an absolute URL, or an absolute path (Go's url.ParseRequestURI), whose scheme and host are empty. */
class Url {
  readonly url: URL;
  readonly path: boolean;
  constructor(s: string) {
    this.path = s.startsWith('/');
    this.url = this.path ? new URL(s, 'file://') : new URL(s);
  }
}

function isUrl(s: string): boolean {
  try {
    new Url(s);
    return true;
  } catch {
    return false;
  }
}

type Compiled = ((ctx: { self: unknown }) => unknown) | null;

let env: Environment | undefined;
const compiled = new Map<string, Compiled>();

function environment(): Environment {
  env ??= withRe2Matches(new Environment({ unlistedVariablesAreDyn: true, homogeneousAggregateLiterals: false }))
    .registerType('URL', Url)
    .registerFunction('url(string): URL', (s: string) => new Url(s))
    .registerFunction('isURL(string): bool', isUrl)
    .registerFunction('URL.getScheme(): string', (u: Url) => (u.path ? '' : u.url.protocol.slice(0, -1)))
    .registerFunction('URL.getHost(): string', (u: Url) => (u.path ? '' : u.url.host));
  return env;
}

/** The compiled rule, or null when the rule cannot be compiled here (it is then not enforced; see `uncompilableRules`). */
function compile(rule: string): Compiled {
  if (compiled.has(rule)) return compiled.get(rule)!;
  let fn: Compiled = null;
  // Transition rules compare with the stored object; a file has no previous version.
  if (!/\boldSelf\b/.test(rule)) {
    try {
      fn = parseCel(environment(), rule) as Compiled;
    } catch {
      fn = null;
    }
  }
  compiled.set(rule, fn);
  return fn;
}

/** Checks `value` against the CEL rules of `schema` and of everything below it. */
export function checkCelRules(schema: unknown, value: unknown, path: (string | number)[], report: Reporter): void {
  const node = schema as SchemaNode | undefined;
  if (!node || value === undefined || value === null) return;
  for (const r of node['x-kubernetes-validations'] ?? []) {
    const fn = compile(r.rule);
    if (!fn) continue;
    let ok: unknown;
    try {
      ok = fn({ self: value });
    } catch {
      ok = false; // A runtime error (e.g. an unparsable URL) fails the rule, as in Kubernetes.
    }
    if (ok !== true) {
      const at = r.fieldPath ? [...path, ...r.fieldPath.split('.').filter(Boolean)] : path;
      report.error(at, r.message ?? `fails Istio's rule: ${r.rule}`, `Istio's schema requires: ${r.rule}`);
    }
  }
  if (Array.isArray(value)) {
    if (node.items) value.forEach((v, i) => checkCelRules(node.items, v, [...path, i], report));
    return;
  }
  if (typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value)) {
    const child = node.properties?.[k] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    if (child) checkCelRules(child, v, [...path, k], report);
  }
}

/** Every rule in `schema` that cannot be compiled here (tests keep this list empty). */
export function uncompilableRules(schema: unknown): string[] {
  const out: string[] = [];
  const walk = (n: unknown) => {
    if (!n || typeof n !== 'object') return;
    if (Array.isArray(n)) return n.forEach(walk);
    for (const [k, v] of Object.entries(n)) {
      if (k === 'x-kubernetes-validations') for (const r of v as Rule[]) if (!/\boldSelf\b/.test(r.rule) && !compile(r.rule)) out.push(r.rule);
      walk(v);
    }
  };
  walk(schema);
  return out;
}
