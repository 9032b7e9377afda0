// Istio's MeshConfig (the subset Rigging honours), parsed from a YAML/JSON file. Unknown fields
// are errors with their path, so a typo never silently changes mesh behaviour.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { RigError } from '../core/errors.ts';
import { parseDuration } from '../api/validation/rules.ts';
import { checkExtensionProviders } from '../telemetry/extension-providers.ts';
import { checkProxyTracing, type ProxyTracing } from '../telemetry/extension-providers-tracing.ts';
import { parseGatewayTopology, type GatewayTopology } from './gateway-topology.ts';
import { parseMeshNetworks, type MeshNetworks } from './network.ts';
import { parseProxyHeaders, type ProxyHeaders } from './proxy-headers.ts';

export type OutboundMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export interface LocalityLbSettingConfig {
  distribute?: { from?: string; to?: Record<string, number> }[];
  failover?: { from?: string; to?: string }[];
  failoverPriority?: string[];
  enabled?: boolean;
}

export interface ProxyDefaults {
  discoveryAddress?: string;
  proxyMetadata?: Record<string, string>;
  holdApplicationUntilProxyStarts?: boolean;
  tracing?: ProxyTracing;
  concurrency?: number;
  drainDuration?: string;
  terminationDrainDuration?: string;
  /** Gateways only (see gateway-topology.ts); a gateway's `proxy.istio.io/config` overrides it field by field. */
  gatewayTopology?: GatewayTopology;
  /** See proxy-headers.ts; a proxy's `proxy.istio.io/config` overrides it field by field. */
  proxyHeaders?: ProxyHeaders;
  /** Envoy stats each proxy keeps beyond Istio's defaults (its bootstrap's stats_matcher); a proxy's own lists replace these. */
  proxyStatsMatcher?: { inclusionPrefixes?: string[]; inclusionSuffixes?: string[]; inclusionRegexps?: string[] };
}

export interface MeshConfig {
  rootNamespace: string;
  trustDomain: string;
  trustDomainAliases: string[];
  outboundTrafficPolicy: { mode: OutboundMode };
  defaultConfig: ProxyDefaults;
  enableTracing: boolean;
  accessLogFile: string;
  accessLogEncoding: 'TEXT' | 'JSON';
  accessLogFormat: string;
  /** No Listener.access_log (Istio's listener log of connections no filter chain took). */
  disableEnvoyListenerLog: boolean;
  enableAutoMtls: boolean;
  connectTimeout: string;
  protocolDetectionTimeout: string;
  /** dns_refresh_rate of every DNS cluster istiod builds (Istio's default: 60s; the records' TTL decides first, respect_dns_ttl). */
  dnsRefreshRate: string;
  ingressSelector: string;
  defaultProviders: { metrics?: string[]; tracing?: string[]; accessLogging?: string[] };
  extensionProviders: Record<string, unknown>[];
  enablePrometheusMerge: boolean;
  /** Istio's mesh-wide default (a DestinationRule's setting replaces it); Istio's default is `{ enabled: true }`. */
  localityLbSetting?: LocalityLbSettingConfig;
  /** Istio's MeshNetworks, read beside the MeshConfig (the `istio` ConfigMap's `meshNetworks` key); see network.ts. */
  meshNetworks?: MeshNetworks;
}

export const DEFAULT_MESH_CONFIG: MeshConfig = Object.freeze({
  rootNamespace: 'istio-system',
  trustDomain: 'cluster.local',
  trustDomainAliases: [],
  outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
  defaultConfig: {},
  enableTracing: true,
  accessLogFile: '',
  accessLogEncoding: 'TEXT',
  accessLogFormat: '',
  disableEnvoyListenerLog: false,
  enableAutoMtls: true,
  connectTimeout: '10s',
  protocolDetectionTimeout: '0s',
  dnsRefreshRate: '60s',
  ingressSelector: 'ingressgateway',
  defaultProviders: {},
  extensionProviders: [],
  enablePrometheusMerge: true,
  localityLbSetting: { enabled: true },
}) as MeshConfig;

type FieldKind = 'string' | 'boolean' | 'number' | 'object' | 'array' | 'stringArray' | 'stringMap';
const FIELDS: Record<string, FieldKind> = {
  rootNamespace: 'string',
  trustDomain: 'string',
  trustDomainAliases: 'stringArray',
  outboundTrafficPolicy: 'object',
  defaultConfig: 'object',
  enableTracing: 'boolean',
  accessLogFile: 'string',
  accessLogEncoding: 'string',
  accessLogFormat: 'string',
  disableEnvoyListenerLog: 'boolean',
  enableAutoMtls: 'boolean',
  connectTimeout: 'string',
  protocolDetectionTimeout: 'string',
  dnsRefreshRate: 'string',
  ingressSelector: 'string',
  defaultProviders: 'object',
  extensionProviders: 'array',
  enablePrometheusMerge: 'boolean',
  localityLbSetting: 'object',
};
const DEFAULT_CONFIG_FIELDS: Record<string, FieldKind> = {
  discoveryAddress: 'string',
  proxyMetadata: 'stringMap',
  holdApplicationUntilProxyStarts: 'boolean',
  tracing: 'object',
  concurrency: 'number',
  drainDuration: 'string',
  terminationDrainDuration: 'string',
  gatewayTopology: 'object',
  proxyHeaders: 'object',
  proxyStatsMatcher: 'object',
};
const DURATION = /^\d+(\.\d+)?(ms|s|m|h)$/;

function typeOk(kind: FieldKind, v: unknown): boolean {
  switch (kind) {
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'stringArray':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
    case 'stringMap':
      return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
    default:
      return typeof v === kind;
  }
}

function checkFields(obj: Record<string, unknown>, fields: Record<string, FieldKind>, prefix: string, errors: string[]): void {
  for (const [k, v] of Object.entries(obj)) {
    const kind = fields[k];
    if (!kind) errors.push(`${prefix}${k}: unknown field (known: ${Object.keys(fields).join(', ')})`);
    else if (!typeOk(kind, v)) errors.push(`${prefix}${k}: expected ${kind}, got ${JSON.stringify(v)}`);
  }
}

function checkLocalityLbSetting(l: Record<string, unknown>): string[] {
  const errors: string[] = [];
  checkFields(l, { distribute: 'array', failover: 'array', failoverPriority: 'stringArray', enabled: 'boolean' }, 'localityLbSetting.', errors);
  const distribute = Array.isArray(l.distribute) ? (l.distribute as unknown[]) : [];
  const failover = Array.isArray(l.failover) ? (l.failover as unknown[]) : [];
  if (distribute.length && failover.length) errors.push('localityLbSetting: distribute and failover cannot both be set');
  distribute.forEach((d, i) => {
    const o = (typeOk('object', d) ? d : {}) as Record<string, unknown>;
    checkFields(o, { from: 'string', to: 'object' }, `localityLbSetting.distribute[${i}].`, errors);
    const sum = Object.values((o.to ?? {}) as Record<string, unknown>).reduce<number>((n, w) => n + (typeof w === 'number' ? w : NaN), 0);
    if (sum !== 100) errors.push(`localityLbSetting.distribute[${i}].to: the weights must be numbers adding up to 100, got ${JSON.stringify(o.to)}`);
  });
  failover.forEach((f, i) => {
    const o = (typeOk('object', f) ? f : {}) as Record<string, unknown>;
    checkFields(o, { from: 'string', to: 'string' }, `localityLbSetting.failover[${i}].`, errors);
    if (o.from === undefined || o.to === undefined || o.from === o.to) errors.push(`localityLbSetting.failover[${i}]: needs from and to, two different regions`);
  });
  return errors;
}

/** Validates a MeshConfig object and fills Istio's defaults; throws a RigError listing every problem. */
export function parseMeshConfig(input: unknown, where = 'mesh config'): MeshConfig {
  if (input === null || input === undefined) return structuredClone(DEFAULT_MESH_CONFIG);
  if (typeof input !== 'object' || Array.isArray(input)) throw new RigError('MESH_ERR_INVALID_CONFIG', `${where}: expected a mapping of MeshConfig fields`);
  const obj = input as Record<string, unknown>;
  const errors: string[] = [];
  checkFields(obj, FIELDS, '', errors);
  const otp = obj.outboundTrafficPolicy as Record<string, unknown> | undefined;
  if (otp && typeOk('object', otp)) {
    checkFields(otp, { mode: 'string' }, 'outboundTrafficPolicy.', errors);
    if (otp.mode !== undefined && otp.mode !== 'ALLOW_ANY' && otp.mode !== 'REGISTRY_ONLY') errors.push(`outboundTrafficPolicy.mode: must be ALLOW_ANY or REGISTRY_ONLY, got ${JSON.stringify(otp.mode)}`);
  }
  let gatewayTopology: GatewayTopology | undefined;
  let proxyHeaders: ProxyHeaders | undefined;
  if (obj.defaultConfig && typeOk('object', obj.defaultConfig)) {
    const dc = obj.defaultConfig as Record<string, unknown>;
    checkFields(dc, DEFAULT_CONFIG_FIELDS, 'defaultConfig.', errors);
    errors.push(...checkProxyTracing(dc.tracing));
    if (typeOk('object', dc.gatewayTopology)) gatewayTopology = parseGatewayTopology(dc.gatewayTopology, 'defaultConfig.gatewayTopology', errors);
    if (typeOk('object', dc.proxyHeaders)) proxyHeaders = parseProxyHeaders(dc.proxyHeaders, 'defaultConfig.proxyHeaders', errors);
    if (dc.proxyStatsMatcher && typeOk('object', dc.proxyStatsMatcher)) checkFields(dc.proxyStatsMatcher as Record<string, unknown>, { inclusionPrefixes: 'stringArray', inclusionSuffixes: 'stringArray', inclusionRegexps: 'stringArray' }, 'defaultConfig.proxyStatsMatcher.', errors);
  }
  if (obj.accessLogEncoding !== undefined && obj.accessLogEncoding !== 'TEXT' && obj.accessLogEncoding !== 'JSON') errors.push(`accessLogEncoding: must be TEXT or JSON, got ${JSON.stringify(obj.accessLogEncoding)}`);
  for (const f of ['connectTimeout', 'protocolDetectionTimeout', 'dnsRefreshRate'] as const) {
    if (typeof obj[f] === 'string' && !DURATION.test(obj[f] as string)) errors.push(`${f}: invalid duration ${JSON.stringify(obj[f])} (e.g. "10s", "500ms")`);
  }
  // Envoy refuses a cluster's dns_refresh_rate of 1ms or less.
  if (typeof obj.dnsRefreshRate === 'string' && DURATION.test(obj.dnsRefreshRate) && parseDuration(obj.dnsRefreshRate)! <= 1) errors.push(`dnsRefreshRate: must be greater than 1ms, got ${JSON.stringify(obj.dnsRefreshRate)}`);
  if (typeof obj.rootNamespace === 'string' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(obj.rootNamespace)) errors.push(`rootNamespace: ${JSON.stringify(obj.rootNamespace)} is not a valid namespace name`);
  errors.push(...checkExtensionProviders(obj.extensionProviders));
  if (obj.localityLbSetting && typeOk('object', obj.localityLbSetting)) errors.push(...checkLocalityLbSetting(obj.localityLbSetting as Record<string, unknown>));
  const dp = obj.defaultProviders as Record<string, unknown> | undefined;
  if (dp && typeOk('object', dp)) checkFields(dp, { metrics: 'stringArray', tracing: 'stringArray', accessLogging: 'stringArray' }, 'defaultProviders.', errors);
  if (errors.length) throw new RigError('MESH_ERR_INVALID_CONFIG', `${where}: invalid MeshConfig:\n  ${errors.join('\n  ')}\n(fix the fields above; see Istio's MeshConfig reference for the shape)`);
  const d = structuredClone(DEFAULT_MESH_CONFIG);
  return {
    ...d,
    ...(obj as Partial<MeshConfig>),
    outboundTrafficPolicy: { mode: ((otp?.mode as OutboundMode | undefined) ?? d.outboundTrafficPolicy.mode) },
    defaultConfig: { ...(obj.defaultConfig as ProxyDefaults | undefined), ...(gatewayTopology ? { gatewayTopology } : {}), ...(proxyHeaders ? { proxyHeaders } : {}) },
  };
}

/**
 * Reads a mesh config file (YAML or JSON; a top-level `meshConfig:` or `mesh:` wrapper as in Istio's
 * ConfigMap/IstioOperator, beside an optional `meshNetworks:`, or Istio's `istio` ConfigMap itself
 * with `data.mesh` and `data.meshNetworks`, is accepted).
 */
export async function loadMeshConfig(file: string): Promise<MeshConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RigError('MESH_ERR_FILE', `cannot read mesh config ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new RigError('MESH_ERR_INVALID_CONFIG', `${file}: YAML syntax error: ${(err as Error).message.split('\n')[0]}`);
  }
  let networks: unknown;
  if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
    const o = doc as Record<string, unknown>;
    // Istio's own home for it: the `istio` ConfigMap of istio-system, MeshConfig YAML in data.mesh
    // and MeshNetworks YAML in data.meshNetworks.
    const data = o.data as Record<string, unknown> | undefined;
    if (o.kind === 'ConfigMap' && (typeof data?.mesh === 'string' || typeof data?.meshNetworks === 'string')) {
      doc = yamlIn(data.mesh, file, 'data.mesh');
      networks = yamlIn(data.meshNetworks, file, 'data.meshNetworks');
    } else if ((o.meshConfig || o.mesh || o.meshNetworks) && Object.keys(o).every((k) => k === 'meshConfig' || k === 'mesh' || k === 'meshNetworks')) {
      doc = o.meshConfig ?? o.mesh;
      if (typeof doc === 'string') doc = parse(doc);
      networks = typeof o.meshNetworks === 'string' ? yamlIn(o.meshNetworks, file, 'meshNetworks') : o.meshNetworks;
    }
  }
  const mesh = parseMeshConfig(doc, file);
  const errors: string[] = [];
  const meshNetworks = parseMeshNetworks(networks, errors);
  if (errors.length) throw new RigError('MESH_ERR_INVALID_CONFIG', `${file}: invalid MeshNetworks:\n  ${errors.join('\n  ')}\n(fix the fields above; see Istio's MeshNetworks reference for the shape)`);
  return meshNetworks ? { ...mesh, meshNetworks } : mesh;
}

function yamlIn(text: unknown, file: string, where: string): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return parse(text);
  } catch (err) {
    throw new RigError('MESH_ERR_INVALID_CONFIG', `${file}: ${where}: YAML syntax error: ${(err as Error).message.split('\n')[0]}`);
  }
}
