// Telemetry rules, after Istio's validating webhook and the CRD's rules.
import type { ProviderRef, TelemetrySpec } from '../types/telemetry.ts';
import type { FieldPath } from '../source-map.ts';
import { checkAttachment, checkDuration, checkPercent } from './common.ts';
import type { Reporter } from './reporter.ts';

export interface TelemetryOptions {
  /** Provider names the mesh defines (MeshConfig extensionProviders); when given, other names are errors. */
  providers?: readonly string[];
}

/** A field Rigging accepts but does not act on: validation warns, the control plane logs it. */
export interface UnsupportedTelemetryField {
  readonly path: FieldPath;
  readonly message: string;
  readonly hint: string;
}

/** The fields of a Telemetry that Rigging does not implement (they have no effect). */
export function unsupportedTelemetryFields(spec: TelemetrySpec): UnsupportedTelemetryField[] {
  const out: UnsupportedTelemetryField[] = [];
  spec.metrics?.forEach((m, i) => {
    m.overrides?.forEach((o, j) => {
      if (o.match?.customMetric) out.push({ path: ['spec', 'metrics', i, 'overrides', j, 'match', 'customMetric'], message: `custom metrics are not supported: the override for "${o.match.customMetric}" is ignored`, hint: "override one of Istio's standard metrics (match.metric)" });
    });
  });
  return out;
}

export function validateTelemetry(spec: TelemetrySpec, r: Reporter, opts: TelemetryOptions = {}): void {
  checkAttachment(spec, r);
  for (const u of unsupportedTelemetryFields(spec)) r.warn(u.path, u.message, u.hint);
  const checkProviders = (providers: ProviderRef[] | undefined, path: FieldPath) => {
    providers?.forEach((p, i) => {
      if (!p.name) r.error([...path, i, 'name'], 'provider name must not be empty', 'name a provider from the mesh config');
      else if (opts.providers && !opts.providers.includes(p.name)) r.error([...path, i, 'name'], `provider "${p.name}" is not defined in the mesh config`, `use one of: ${opts.providers.join(', ') || '(none defined)'}`);
    });
  };
  spec.tracing?.forEach((t, i) => {
    const path = ['spec', 'tracing', i];
    checkProviders(t.providers, [...path, 'providers']);
    checkPercent(t.randomSamplingPercentage, [...path, 'randomSamplingPercentage'], r);
    for (const [tag, v] of Object.entries(t.customTags ?? {})) {
      const ways = (['literal', 'environment', 'header'] as const).filter((k) => v[k] !== undefined);
      if (ways.length !== 1) r.error([...path, 'customTags', tag], ways.length ? `only one of ${ways.join(', ')} may be set` : 'a custom tag needs literal, environment or header', 'set exactly one source for the tag');
    }
  });
  spec.metrics?.forEach((m, i) => {
    const path = ['spec', 'metrics', i];
    checkProviders(m.providers, [...path, 'providers']);
    checkDuration(m.reportingInterval, [...path, 'reportingInterval'], r);
    m.overrides?.forEach((o, j) => {
      if (o.match?.metric && o.match.customMetric) r.error([...path, 'overrides', j, 'match'], 'metric and customMetric cannot both be set', 'use one of them');
      for (const [tag, op] of Object.entries(o.tagOverrides ?? {})) {
        const tp = [...path, 'overrides', j, 'tagOverrides', tag];
        const operation = op.operation ?? 'UPSERT';
        if (operation === 'UPSERT' && !op.value) r.error(tp, 'value must be set when operation is UPSERT', 'add value: an expression such as request.host');
        if (operation === 'REMOVE' && op.value !== undefined) r.error([...tp, 'value'], 'value must not be set when operation is REMOVE', 'remove value');
      }
    });
  });
  spec.accessLogging?.forEach((a, i) => {
    const path = ['spec', 'accessLogging', i];
    checkProviders(a.providers, [...path, 'providers']);
    if (a.filter && !a.filter.expression?.trim()) r.error([...path, 'filter', 'expression'], 'filter expression must not be empty', 'write a CEL expression such as response.code >= 400');
  });
}
