// Structural validation: the resource's spec against its kind's official schema (Istio's CRD
// OpenAPI v3 schema, Kubernetes' schema, the Gateway API's, or the Workload schema), compiled with ajv once per
// kind and version at first use. ajv's errors become diagnostics at the YAML position of the field.
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { closest, distance } from 'fastest-levenshtein';
import type { Resource } from '../resource.ts';
import { ISTIO_SCHEMAS } from '../schema/istio-schemas.gen.ts';
import { GATEWAY_API_SCHEMAS } from '../schema/gateway-api-schemas.gen.ts';
import { KUBERNETES_SCHEMAS } from '../schema/kubernetes-schemas.gen.ts';
import { WORKLOAD_SCHEMA } from '../schema/workload-schema.ts';
import type { Reporter } from './reporter.ts';

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function compiler(): Ajv {
  if (ajv) return ajv;
  ajv = new Ajv({ allErrors: true, strict: false, verbose: true, allowUnionTypes: true });
  const int = (min: number, max: number) => ({ type: 'number' as const, validate: (n: number) => Number.isInteger(n) && n >= min && n <= max });
  ajv.addFormat('int32', int(-(2 ** 31), 2 ** 31 - 1));
  ajv.addFormat('uint32', int(0, 2 ** 32 - 1));
  ajv.addFormat('int64', int(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
  ajv.addFormat('double', { type: 'number', validate: (n: number) => Number.isFinite(n) });
  ajv.addFormat('float', { type: 'number', validate: (n: number) => Number.isFinite(n) });
  ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  return ajv;
}

/** The Istio CRD schema (spec) of a resource's kind and version; undefined for the other kinds. */
export function istioSchemaFor(resource: Resource): unknown {
  const entry = ISTIO_SCHEMAS[resource.kind];
  const index = entry?.versions[resource.apiVersion.slice(resource.apiVersion.indexOf('/') + 1)];
  return index === undefined ? undefined : entry.schemas[index];
}

function validatorFor(resource: Resource): ValidateFunction | undefined {
  const key = `${resource.kind}@${resource.apiVersion}`;
  let fn = compiled.get(key);
  if (fn) return fn;
  let schema: unknown;
  if (resource.kind === 'Workload') schema = WORKLOAD_SCHEMA;
  else if (resource.kind === 'Service' || resource.kind === 'Namespace') schema = KUBERNETES_SCHEMAS[resource.kind];
  else if (resource.kind in GATEWAY_API_SCHEMAS) schema = GATEWAY_API_SCHEMAS[resource.kind as keyof typeof GATEWAY_API_SCHEMAS];
  else {
    schema = istioSchemaFor(resource);
    if (schema === undefined) return undefined;
  }
  fn = compiler().compile(closed(schema) as object);
  compiled.set(key, fn);
  return fn;
}

/**
 * Kubernetes prunes (or, with strict field validation, rejects) fields a CRD schema does not
 * declare; the schemas say so implicitly. Make it explicit for ajv: every object schema with
 * `properties` and no `additionalProperties` is closed, unless it preserves unknown fields.
 */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, closed(s)])) : closed(v);
  if (out.properties && out.additionalProperties === undefined && !out['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
  return out;
}

/** Checks `spec` (as written) against the schema; returns false when it has structural errors. */
export function validateStructure(resource: Resource, spec: unknown, report: Reporter): boolean {
  const validate = validatorFor(resource);
  if (!validate) return true;
  if (validate(spec ?? {})) return true;
  const errors = relevant(validate.errors ?? []);
  for (const e of errors) describe(e, report);
  return errors.length === 0;
}

/** Drops the branch-by-branch noise under a failed oneOf/anyOf: the combinator's own error says it all. */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  const combinators = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.schemaPath + '/');
  return errors.filter((e) => !combinators.some((p) => e.schemaPath.startsWith(p)));
}

function pathOf(instancePath: string): (string | number)[] {
  const out: (string | number)[] = ['spec'];
  if (!instancePath) return out;
  for (const raw of instancePath.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out.push(/^\d+$/.test(seg) ? Number(seg) : seg);
  }
  return out;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  return `a ${typeof v}`;
}

function describe(e: ErrorObject, report: Reporter): void {
  const path = pathOf(e.instancePath);
  const params = e.params as Record<string, unknown>;
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      const known = Object.keys((parent.properties as object) ?? {});
      const near = known.length ? closest(field, known) : undefined;
      const hint = near && distance(field, near) <= Math.max(2, Math.floor(field.length / 3)) ? `did you mean "${near}"?` : known.length ? `known fields here: ${known.join(', ')}` : 'remove it';
      report.error([...path, field], `unknown field "${field}"`, hint, { key: true });
      return;
    }
    case 'required':
      report.error(path, `missing required field "${String(params.missingProperty)}"`, `add ${String(params.missingProperty)}`);
      return;
    case 'type': {
      const want = String(params.type).replace(',', ' or ');
      const hint = want === 'string' ? 'quote the value' : want === 'integer' || want === 'number' ? 'write a number without quotes' : `write ${want === 'object' ? 'a map' : want === 'array' ? 'a list' : `a ${want}`}`;
      report.error(path, `must be ${want === 'object' ? 'a map' : want === 'array' ? 'a list' : `a ${want}`}, not ${typeName(e.data)}`, hint);
      return;
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      const near = closest(String(e.data), allowed);
      const hint = distance(String(e.data), near) <= 3 ? `did you mean "${near}"?` : `use one of: ${allowed.join(', ')}`;
      report.error(path, `"${String(e.data)}" is not one of ${allowed.join(', ')}`, hint);
      return;
    }
    case 'oneOf': {
      const names = ((parent.oneOf as { required?: string[] }[]) ?? []).flatMap((b) => b.required ?? []);
      if (names.length > 1) report.error(path, `only one of ${names.join(', ')} may be set`, 'keep one of them and remove the others');
      else report.error(path, 'matches more than one allowed form', 'set only one of the alternatives');
      return;
    }
    case 'anyOf': {
      const types = ((parent.anyOf as { type?: string }[]) ?? []).map((b) => b.type).filter(Boolean);
      report.error(path, types.length ? `must be ${types.join(' or ')}, not ${typeName(e.data)}` : `invalid value (${e.message ?? 'anyOf'})`, 'check the allowed forms of this field');
      return;
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      report.error(path, `${String(e.data)} is out of range: ${e.message}`, 'use a value in range');
      return;
    case 'format':
      report.error(path, `${JSON.stringify(e.data)} is not a valid ${String(params.format)}`, params.format === 'int32' || params.format === 'uint32' ? 'use a whole number in range' : `write a valid ${String(params.format)}`);
      return;
    case 'minItems':
      report.error(path, `must have at least ${String(params.limit)} item(s)`, 'add the missing entries or remove the field');
      return;
    case 'minLength':
      report.error(path, Number(params.limit) === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters`, 'write a value');
      return;
    default:
      report.error(path, e.message ?? `fails ${e.keyword}`, 'check the field against the Istio reference');
  }
}
