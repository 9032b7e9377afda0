// MeshConfig.extensionProviders that Rigging implements (Istio's shapes): prometheus, the tracers
// zipkin and opentelemetry (OTLP/gRPC, or OTLP/HTTP through its `http` field; extension-providers-tracing.ts),
// envoyFileAccessLog, and the external authorization providers envoyExtAuthzHttp / envoyExtAuthzGrpc
// (extension-providers-authz.ts). Checked when the mesh config is read, so a typo or an unsupported
// provider is an error naming the entry.
import { checkExtAuthzProvider, EXT_AUTHZ_FIELDS, type ExtAuthzGrpcProvider, type ExtAuthzHttpProvider } from './extension-providers-authz.ts';
import { checkTracingProvider, TRACING_FIELDS, type OpenTelemetryProvider, type ZipkinProvider } from './extension-providers-tracing.ts';

export type { HttpHeader, OpenTelemetryProvider, ZipkinProvider } from './extension-providers-tracing.ts';

export interface FileAccessLogProvider {
  path?: string;
  logFormat?: { text?: string; labels?: Record<string, unknown> };
  /** Istio's EnvoyFileAccessLogProvider.omit_empty_values, carried to Envoy's log_format.omit_empty_values (an empty command prints nothing, not `-`; its JSON key is left out). */
  omitEmptyValues?: boolean;
}

export interface ExtensionProvider {
  name: string;
  prometheus?: Record<string, never>;
  zipkin?: ZipkinProvider;
  opentelemetry?: OpenTelemetryProvider;
  envoyFileAccessLog?: FileAccessLogProvider;
  envoyExtAuthzHttp?: ExtAuthzHttpProvider;
  envoyExtAuthzGrpc?: ExtAuthzGrpcProvider;
}

const KINDS = ['prometheus', 'zipkin', 'opentelemetry', 'envoyFileAccessLog', 'envoyExtAuthzHttp', 'envoyExtAuthzGrpc'];
const UNSUPPORTED = ['skywalking', 'datadog', 'lightstep', 'stackdriver', 'envoyOtelAls', 'envoyHttpAls', 'envoyTcpAls', 'sds'];
const FIELDS: Record<string, string[]> = {
  prometheus: [],
  ...TRACING_FIELDS,
  envoyFileAccessLog: ['path', 'logFormat', 'omitEmptyValues'],
  ...EXT_AUTHZ_FIELDS,
};

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkFileAccessLog(cfg: Record<string, unknown>, at: string): string[] {
  const errors: string[] = [];
  if (cfg.path !== undefined && typeof cfg.path !== 'string') errors.push(`${at}.path: expected a file path`);
  if (cfg.omitEmptyValues !== undefined && typeof cfg.omitEmptyValues !== 'boolean') errors.push(`${at}.omitEmptyValues: expected true or false`);
  const lf = cfg.logFormat;
  if (lf === undefined) return errors;
  if (!isObj(lf) || (lf.text !== undefined && lf.labels !== undefined)) return [...errors, `${at}.logFormat: set either text or labels`];
  for (const k of Object.keys(lf)) {
    // Istio keeps omitEmptyValues beside logFormat, not in it.
    if (k === 'omitEmptyValues') errors.push(`${at}.logFormat.omitEmptyValues: unknown field; Istio's field is ${at}.omitEmptyValues (beside logFormat)`);
    else if (k !== 'text' && k !== 'labels') errors.push(`${at}.logFormat.${k}: unknown field (known: text, labels)`);
  }
  if (lf.text !== undefined && typeof lf.text !== 'string') errors.push(`${at}.logFormat.text: expected a format string`);
  if (lf.labels !== undefined && !isObj(lf.labels)) errors.push(`${at}.logFormat.labels: expected a mapping of JSON keys to format strings`);
  return errors;
}

/** Problems in MeshConfig.extensionProviders, one message per problem (empty when valid). */
export function checkExtensionProviders(list: unknown): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) return ['extensionProviders: expected a list'];
  const errors: string[] = [];
  const names = new Set<string>();
  list.forEach((p, i) => {
    const at = `extensionProviders[${i}]`;
    if (!isObj(p)) return void errors.push(`${at}: expected a mapping with name and one provider kind`);
    if (typeof p.name !== 'string' || !p.name) errors.push(`${at}.name: required`);
    else if (names.has(p.name)) errors.push(`${at}.name: "${p.name}" is used by another provider`);
    else names.add(p.name);
    const kinds = Object.keys(p).filter((k) => k !== 'name');
    if (kinds.length !== 1) return void errors.push(`${at}: exactly one provider kind expected (${KINDS.join(', ')}), got ${kinds.join(', ') || 'none'}`);
    const kind = kinds[0];
    if (UNSUPPORTED.includes(kind)) return void errors.push(`${at}.${kind}: this provider kind is not supported by Rigging (supported: ${KINDS.join(', ')})`);
    if (!KINDS.includes(kind)) return void errors.push(`${at}.${kind}: unknown provider kind (supported: ${KINDS.join(', ')})`);
    const cfg = p[kind];
    if (!isObj(cfg)) return void errors.push(`${at}.${kind}: expected a mapping`);
    for (const k of Object.keys(cfg)) if (!FIELDS[kind].includes(k)) errors.push(`${at}.${kind}.${k}: unknown field (known: ${FIELDS[kind].join(', ') || 'none'})`);
    if (kind === 'zipkin' || kind === 'opentelemetry') errors.push(...checkTracingProvider(kind, cfg, `${at}.${kind}`));
    if (kind === 'envoyExtAuthzHttp' || kind === 'envoyExtAuthzGrpc') errors.push(...checkExtAuthzProvider(kind, cfg, at));
    if (kind === 'envoyFileAccessLog') errors.push(...checkFileAccessLog(cfg, `${at}.envoyFileAccessLog`));
  });
  return errors;
}
