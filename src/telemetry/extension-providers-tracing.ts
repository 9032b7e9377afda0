// The tracing kinds of MeshConfig.extensionProviders, as Istio defines them: zipkin
// (ZipkinTracingProvider) and opentelemetry (OpenTelemetryTracingProvider with its HttpService,
// GrpcService and ResourceDetectors; HttpHeader for headers and gRPC metadata), and the older
// defaultConfig.tracing (ProxyConfig's Tracing). Every field Istio has is either checked here and
// carried into the proxies' tracer config (telemetry-config.ts), or an error saying what to use
// instead: none is accepted and ignored.
import { toSeconds } from '../xds/translate/duration.ts';

/** A header on span exports: a literal value (a proxy format string, as Envoy's) or the control plane's environment variable (Istio: istiod's). */
export interface HttpHeader {
  name: string;
  value?: string;
  envName?: string;
}

export type ZipkinTraceContextOption = 'USE_B3' | 'USE_B3_WITH_W3C_PROPAGATION';

export interface ZipkinProvider {
  service: string;
  port: number;
  maxTagLength?: number;
  enable64bitTraceId?: boolean;
  path?: string;
  traceContextOption?: ZipkinTraceContextOption;
  timeout?: string;
  headers?: HttpHeader[];
}

export interface OpenTelemetryProvider {
  service: string;
  port: number;
  maxTagLength?: number;
  http?: { path: string; timeout?: string; headers?: HttpHeader[] };
  grpc?: { timeout?: string; initialMetadata?: HttpHeader[] };
  resourceDetectors?: { environment?: Record<string, never>; dynatrace?: Record<string, never> };
}

export interface CustomTag {
  literal?: { value?: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
}

/** MeshConfig defaultConfig.tracing (ProxyConfig Tracing): the tracing of a mesh without Telemetry tracing providers. */
export interface ProxyTracing {
  zipkin?: { address?: string };
  sampling?: number;
  customTags?: Record<string, CustomTag>;
  maxPathTagLength?: number;
  enableIstioTags?: boolean;
}

/** Istio's fields per tracing kind (the unsupported ones get their own error below, not "unknown field"). */
export const TRACING_FIELDS: Record<'zipkin' | 'opentelemetry', string[]> = {
  zipkin: ['service', 'port', 'maxTagLength', 'enable64bitTraceId', 'path', 'traceContextOption', 'timeout', 'headers'],
  opentelemetry: ['service', 'port', 'maxTagLength', 'http', 'grpc', 'resourceDetectors', 'dynatraceSampler'],
};

const TRACE_CONTEXT_OPTIONS = ['USE_B3', 'USE_B3_WITH_W3C_PROPAGATION'];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What a format string may hold around literal text: %% or a %COMMAND(arg)%. */
const FORMAT_PART = /%%|%[A-Z_]+(\([^)]*\))?%/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Headers an export request keeps to itself (its framing and target), and gRPC's own metadata. */
const RESERVED_HTTP = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'upgrade', 'keep-alive', 'te']);
const RESERVED_GRPC = new Set(['host', 'content-type', 'te', 'user-agent']);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownFields(o: Record<string, unknown>, known: string[], at: string, errors: string[]): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) errors.push(`${at}.${k}: unknown field (known: ${known.join(', ') || 'none'})`);
}

function checkTimeout(v: unknown, at: string, errors: string[]): void {
  if (v === undefined) return;
  let s = NaN;
  try {
    if (typeof v === 'string') s = toSeconds(v);
  } catch {
    // reported below
  }
  if (!(s > 0)) errors.push(`${at}: expected a positive duration such as "10s" or "500ms", got ${JSON.stringify(v)}`);
}

/** An HttpHeader list: HTTP headers on export requests, or gRPC initial metadata. */
function checkHeaders(v: unknown, at: string, kind: 'http' | 'grpc', errors: string[]): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) return void errors.push(`${at}: expected a list of { name, value } or { name, envName }`);
  const seen = new Set<string>();
  v.forEach((h, i) => {
    const p = `${at}[${i}]`;
    if (!isObj(h)) return void errors.push(`${p}: expected a mapping { name, value } or { name, envName }`);
    unknownFields(h, ['name', 'value', 'envName'], p, errors);
    const name = typeof h.name === 'string' ? h.name.toLowerCase() : '';
    if (!name) errors.push(`${p}.name: required, the ${kind === 'http' ? 'header' : 'metadata'} name`);
    else if (!TOKEN.test(name)) errors.push(`${p}.name: ${JSON.stringify(h.name)} is not a valid header name`);
    else if ((kind === 'http' ? RESERVED_HTTP : RESERVED_GRPC).has(name) || (kind === 'grpc' && name.startsWith('grpc-'))) {
      errors.push(`${p}.name: ${name} is set by the proxy on every export and cannot be configured`);
    } else if (seen.has(name)) errors.push(`${p}.name: ${name} is set twice (each header replaces the one before it)`);
    else seen.add(name);
    if ((h.value === undefined) === (h.envName === undefined)) errors.push(`${p}: set exactly one of value or envName`);
    if (h.value !== undefined && typeof h.value !== 'string') errors.push(`${p}.value: expected a string`);
    else if (typeof h.value === 'string' && h.value.replace(FORMAT_PART, '').includes('%')) {
      errors.push(`${p}.value: a value is a format string (e.g. "Bearer %ENVIRONMENT(TOKEN)%"); write %% for a literal %`);
    }
    if (h.envName !== undefined && (typeof h.envName !== 'string' || !ENV_NAME.test(h.envName))) errors.push(`${p}.envName: expected an environment variable name, got ${JSON.stringify(h.envName)}`);
  });
}

function checkZipkin(cfg: Record<string, unknown>, at: string, errors: string[]): void {
  if (cfg.enable64bitTraceId !== undefined && typeof cfg.enable64bitTraceId !== 'boolean') errors.push(`${at}.enable64bitTraceId: expected true or false`);
  if (cfg.path !== undefined && (typeof cfg.path !== 'string' || !cfg.path.startsWith('/'))) errors.push(`${at}.path: expected a path such as "/api/v2/spans", got ${JSON.stringify(cfg.path)}`);
  if (cfg.traceContextOption !== undefined && !TRACE_CONTEXT_OPTIONS.includes(cfg.traceContextOption as string)) {
    errors.push(`${at}.traceContextOption: must be ${TRACE_CONTEXT_OPTIONS.join(' or ')}, got ${JSON.stringify(cfg.traceContextOption)}`);
  }
  checkTimeout(cfg.timeout, `${at}.timeout`, errors);
  checkHeaders(cfg.headers, `${at}.headers`, 'http', errors);
}

function checkOpenTelemetry(cfg: Record<string, unknown>, at: string, errors: string[]): void {
  if (cfg.http !== undefined && cfg.grpc !== undefined) errors.push(`${at}: set http (OTLP/HTTP) or grpc (OTLP/gRPC), not both`);
  if (cfg.http !== undefined) {
    const h = cfg.http;
    if (!isObj(h)) errors.push(`${at}.http: expected a mapping { path, timeout, headers }`);
    else {
      unknownFields(h, ['path', 'timeout', 'headers'], `${at}.http`, errors);
      if (typeof h.path !== 'string' || !h.path) errors.push(`${at}.http.path: required, the collector's OTLP/HTTP path (e.g. "/v1/traces")`);
      checkTimeout(h.timeout, `${at}.http.timeout`, errors);
      checkHeaders(h.headers, `${at}.http.headers`, 'http', errors);
    }
  }
  if (cfg.grpc !== undefined) {
    const g = cfg.grpc;
    if (!isObj(g)) errors.push(`${at}.grpc: expected a mapping { timeout, initialMetadata }`);
    else {
      unknownFields(g, ['timeout', 'initialMetadata'], `${at}.grpc`, errors);
      checkTimeout(g.timeout, `${at}.grpc.timeout`, errors);
      checkHeaders(g.initialMetadata, `${at}.grpc.initialMetadata`, 'grpc', errors);
    }
  }
  if (cfg.resourceDetectors !== undefined) {
    const rd = cfg.resourceDetectors;
    if (!isObj(rd)) errors.push(`${at}.resourceDetectors: expected a mapping such as { environment: {} }`);
    else {
      for (const k of Object.keys(rd)) if (k !== 'environment' && k !== 'dynatrace') errors.push(`${at}.resourceDetectors.${k}: unknown resource detector (known: environment, dynatrace)`);
      if (rd.environment !== undefined && (!isObj(rd.environment) || Object.keys(rd.environment).length)) errors.push(`${at}.resourceDetectors.environment: expected {} (it reads OTEL_RESOURCE_ATTRIBUTES on each proxy)`);
      if (rd.dynatrace !== undefined && (!isObj(rd.dynatrace) || Object.keys(rd.dynatrace).length)) errors.push(`${at}.resourceDetectors.dynatrace: expected {} (it reads Dynatrace's enrichment files on each proxy)`);
    }
  }
  if (cfg.dynatraceSampler !== undefined) {
    errors.push(`${at}.dynatraceSampler: the Dynatrace sampler is not supported by Rigging; set the sampling rate with a Telemetry resource's tracing.randomSamplingPercentage`);
  }
}

const TELEMETRY_PROVIDERS = 'use an extensionProviders zipkin or opentelemetry provider, selected by a Telemetry resource or defaultProviders.tracing';

/** Problems in MeshConfig defaultConfig.tracing (`at` is its path). */
export function checkProxyTracing(tracing: unknown, at = 'defaultConfig.tracing'): string[] {
  if (tracing === undefined) return [];
  if (!isObj(tracing)) return [`${at}: expected a mapping`];
  const errors: string[] = [];
  for (const k of Object.keys(tracing)) {
    if (['lightstep', 'datadog', 'stackdriver', 'openCensusAgent'].includes(k)) errors.push(`${at}.${k}: this tracer is not supported by Rigging; ${TELEMETRY_PROVIDERS}`);
    else if (k === 'tlsSettings') errors.push(`${at}.tlsSettings: not supported here; ${TELEMETRY_PROVIDERS}, with a DestinationRule for the collector's host setting its TLS`);
    else if (!['zipkin', 'sampling', 'customTags', 'maxPathTagLength', 'enableIstioTags'].includes(k)) errors.push(`${at}.${k}: unknown field (known: zipkin, sampling, customTags, maxPathTagLength, enableIstioTags)`);
  }
  const z = tracing.zipkin;
  if (z !== undefined) {
    if (!isObj(z)) errors.push(`${at}.zipkin: expected a mapping { address }`);
    else {
      unknownFields(z, ['address'], `${at}.zipkin`, errors);
      if (z.address !== undefined && (typeof z.address !== 'string' || !/^(\[[0-9a-fA-F:.]+\]|[^:\s/]+)(:\d{1,5})?$/.test(z.address))) errors.push(`${at}.zipkin.address: expected host:port (e.g. zipkin.istio-system:9411), got ${JSON.stringify(z.address)}`);
    }
  }
  const s = tracing.sampling;
  if (s !== undefined && (typeof s !== 'number' || s < 0 || s > 100)) errors.push(`${at}.sampling: expected a percentage between 0 and 100, got ${JSON.stringify(s)}`);
  const m = tracing.maxPathTagLength;
  if (m !== undefined && (typeof m !== 'number' || !Number.isInteger(m) || m < 0)) errors.push(`${at}.maxPathTagLength: expected a non-negative integer`);
  if (tracing.enableIstioTags !== undefined && typeof tracing.enableIstioTags !== 'boolean') errors.push(`${at}.enableIstioTags: expected true or false`);
  const tags = tracing.customTags;
  if (tags !== undefined) {
    if (!isObj(tags)) errors.push(`${at}.customTags: expected a mapping of tag name to { literal | environment | header }`);
    else {
      for (const [name, tag] of Object.entries(tags)) {
        const p = `${at}.customTags.${name}`;
        if (!isObj(tag)) {
          errors.push(`${p}: expected a mapping { literal | environment | header }`);
          continue;
        }
        unknownFields(tag, ['literal', 'environment', 'header'], p, errors);
        const kinds = ['literal', 'environment', 'header'].filter((k) => tag[k] !== undefined);
        if (kinds.length !== 1) errors.push(`${p}: set exactly one of literal, environment or header`);
        for (const k of kinds) {
          const v = tag[k];
          if (!isObj(v)) {
            errors.push(`${p}.${k}: expected a mapping`);
            continue;
          }
          unknownFields(v, k === 'literal' ? ['value'] : ['name', 'defaultValue'], `${p}.${k}`, errors);
          if (k !== 'literal' && (typeof v.name !== 'string' || !v.name)) errors.push(`${p}.${k}.name: required`);
          for (const f of ['value', 'defaultValue']) if (v[f] !== undefined && typeof v[f] !== 'string') errors.push(`${p}.${k}.${f}: expected a string`);
        }
      }
    }
  }
  return errors;
}

/** Problems in one zipkin or opentelemetry provider config at `at` (e.g. `extensionProviders[0].zipkin`). */
export function checkTracingProvider(kind: 'zipkin' | 'opentelemetry', cfg: Record<string, unknown>, at: string): string[] {
  const errors: string[] = [];
  if (typeof cfg.service !== 'string' || !cfg.service) errors.push(`${at}.service: required (the collector's host, e.g. zipkin.istio-system.svc.cluster.local)`);
  if (typeof cfg.port !== 'number' || !Number.isInteger(cfg.port) || cfg.port < 1 || cfg.port > 65535) errors.push(`${at}.port: required, a port number`);
  if (cfg.maxTagLength !== undefined && (typeof cfg.maxTagLength !== 'number' || !Number.isInteger(cfg.maxTagLength) || cfg.maxTagLength < 0)) errors.push(`${at}.maxTagLength: expected a non-negative integer`);
  if (kind === 'zipkin') checkZipkin(cfg, at, errors);
  else checkOpenTelemetry(cfg, at, errors);
  return errors;
}
