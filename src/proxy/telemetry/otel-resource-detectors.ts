// OpenTelemetryConfig.resource_detectors, as Envoy's OpenTelemetry tracer runs them when the config
// is loaded: the environment detector (EnvironmentResourceDetectorConfig) reads the proxy's
// OTEL_RESOURCE_ATTRIBUTES — comma-separated key=value pairs, values percent-decoded (OpenTelemetry's
// resource SDK specification) — and its attributes are merged over the tracer's own (service.name),
// a detected key replacing the configured one. Only OTEL_RESOURCE_ATTRIBUTES, as Envoy: not
// OTEL_SERVICE_NAME (the OpenTelemetry SDK's envDetector also reads that, hence not used here).
// Other detectors (Dynatrace's enrichment files) are errors.
import type { Reader } from '../config/reader.ts';

const ENVIRONMENT = 'type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.EnvironmentResourceDetectorConfig';

/** Attributes from OTEL_RESOURCE_ATTRIBUTES; a malformed pair is a warning at `path` and skipped. */
export function environmentResource(r: Reader, path: string, env: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (env ?? '').split(',')) {
    if (!pair.trim()) continue;
    const i = pair.indexOf('=');
    const key = i > 0 ? pair.slice(0, i).trim() : '';
    let value: string | undefined;
    try {
      value = i > 0 ? decodeURIComponent(pair.slice(i + 1).trim()) : undefined;
    } catch {
      value = undefined;
    }
    if (!key || value === undefined) {
      r.issues.warn(path, `OTEL_RESOURCE_ATTRIBUTES: ${JSON.stringify(pair)} is not a key=value pair (values percent-encoded); skipped`);
      continue;
    }
    out[key] = value;
  }
  return out;
}

/** The resource attributes the configured detectors add (none when the list is empty). */
export function readResourceDetectors(tc: Reader): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const d of tc.objs('resource_detectors')) {
    d.accept('name');
    const cfg = d.obj('typed_config');
    const type = cfg?.str('@type') ?? '';
    if (type === ENVIRONMENT) Object.assign(attrs, environmentResource(d, d.at('typed_config'), process.env.OTEL_RESOURCE_ATTRIBUTES));
    else d.issues.error(d.at('typed_config'), `resource detector ${JSON.stringify(type || d.raw.name)} is not supported (supported: the environment detector, ${ENVIRONMENT})`);
    cfg?.done();
    d.done();
  }
  return attrs;
}
