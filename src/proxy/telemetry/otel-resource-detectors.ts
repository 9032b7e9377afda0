// OpenTelemetryConfig.resource_detectors, as Envoy's OpenTelemetry tracer runs them when the config
// is loaded; their attributes are merged in order over the tracer's own (service.name), a detected
// key replacing an earlier one.
// - The environment detector (EnvironmentResourceDetectorConfig) reads the proxy's
//   OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value pairs, values percent-decoded (OpenTelemetry's
//   resource SDK specification). Only that variable, as Envoy: not OTEL_SERVICE_NAME (the
//   OpenTelemetry SDK's envDetector also reads it, hence not used here).
// - The Dynatrace detector (DynatraceResourceDetectorConfig) reads Dynatrace's enrichment files,
//   Java-style key=value properties: the OneAgent's dt_metadata_<id>.properties (a virtual file
//   whose content names the file that holds the attributes), then the enrichment directory's
//   dt_metadata.properties (Kubernetes operator) and dt_host_metadata.properties (host OneAgent).
//   Missing files are skipped, none at all is a warning.
import fs from 'node:fs';
import type { Reader } from '../config/reader.ts';

const PREFIX = 'type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.';
const ENVIRONMENT = PREFIX + 'EnvironmentResourceDetectorConfig';
const DYNATRACE = PREFIX + 'DynatraceResourceDetectorConfig';

/** Where the Dynatrace detector looks: the OneAgent's indirection file, then the enrichment directory. */
export const DYNATRACE_FILES = {
  indirect: 'dt_metadata_e617c525669e072eebe3d0f08212e8f2.properties',
  direct: ['/var/lib/dynatrace/enrichment/dt_metadata.properties', '/var/lib/dynatrace/enrichment/dt_host_metadata.properties'],
};

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Attributes from Dynatrace's enrichment files; a warning at `path` when none is there. */
export function dynatraceResource(r: Reader, path: string, files = DYNATRACE_FILES): Record<string, string> {
  const out: Record<string, string> = {};
  const target = readText(files.indirect)?.trim();
  const found = [target, ...files.direct].filter((f): f is string => !!f).map(readText).filter((t): t is string => t !== undefined);
  if (!found.length) r.issues.warn(path, `the Dynatrace resource detector found no enrichment file (${[files.indirect, ...files.direct].join(', ')}); no attributes added`);
  for (const text of found) {
    for (const line of text.split(/\r?\n/)) {
      const i = line.indexOf('=');
      if (i > 0 && !line.trimStart().startsWith('#')) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
  }
  return out;
}

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
    // The detector is chosen by typed_config's type, as Envoy's; the name only labels it.
    d.accept('name');
    const cfg = d.obj('typed_config');
    const type = cfg?.str('@type') ?? '';
    if (type === ENVIRONMENT) Object.assign(attrs, environmentResource(d, d.at('typed_config'), process.env.OTEL_RESOURCE_ATTRIBUTES));
    else if (type === DYNATRACE) Object.assign(attrs, dynatraceResource(d, d.at('typed_config')));
    else d.issues.error(d.at('typed_config'), `resource detector ${JSON.stringify(type || d.raw.name)} is not supported (supported: ${ENVIRONMENT}, ${DYNATRACE})`);
    cfg?.done();
    d.done();
  }
  return attrs;
}
