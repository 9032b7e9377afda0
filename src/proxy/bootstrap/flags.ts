// `rig proxy --xds-address HOST:PORT` and the workload flags: builds the Envoy v3 bootstrap a
// sidecar or router needs to fetch everything else over ADS (Istio's pilot-agent does the same
// from pod metadata): node id and metadata (CONTRACTS §3), dynamic_resources ADS, the xds-grpc
// cluster and admin.
import fs from 'node:fs';
import os from 'node:os';
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { ISTIO_VERSION } from '../../core/version.ts';
import { HTTP_PROTOCOL_OPTIONS_TYPE, UPSTREAM_TLS_TYPE, type EnvoyJson } from '../../envoy/index.ts';
import { readinessProbeErrors } from '../workload-health/readiness-probe.ts';
import { checkProxyStatsMatcher, ISTIO_STATS_CONFIG, istioStatsMatcher, type ProxyStatsMatcher } from './istio-stats-config.ts';
import { parseYaml, parseYamlDocuments } from './yaml-file.ts';

export interface XdsCliOptions {
  xdsAddress?: string;
  xdsTls?: boolean;
  mode?: string;
  namespace?: string;
  workloadName?: string;
  podName?: string;
  serviceAccount?: string;
  labels?: string;
  instanceIp?: string;
  clusterId?: string;
  workloadPort?: string[];
  interception?: string;
  bind?: string;
  outboundPort?: string;
  inboundPort?: string[];
  appPort?: string[];
  upstreamPort?: string[];
  caAddress?: string;
  caRootFile?: string;
  tokenFile?: string;
  trustDomain?: string;
  workloadGroup?: string;
  workloadEntry?: string;
  readinessProbe?: string;
  workloadPidFile?: string;
  probeEnvFile?: string;
}

/** The workload identity the flags describe (what the proxy asks the CA for). */
export interface IdentityFlags {
  caAddress: string;
  caRootFile: string;
  tokenFile?: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  /** Sent to the CA as IstioCertificateRequest.metadata. */
  metadata: Record<string, string>;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Declares the xDS and workload flags on `rig proxy`. */
export function addXdsOptions(cmd: Command): Command {
  return cmd
    .option('--xds-address <host:port>', 'control plane ADS address (istiod: 15010 plaintext, 15012 TLS); builds the bootstrap from the flags below')
    .option('--xds-tls', 'connect to the control plane over TLS, trusting --ca-root-file (port 15012)')
    .option('--mode <mode>', 'sidecar or router (gateway)', 'sidecar')
    .option('--namespace <ns>', 'workload namespace', 'default')
    .option('--workload-name <name>', "workload name (WORKLOAD_NAME: Istio metrics' source_workload / destination_workload)")
    .option('--pod-name <name>', 'pod (replica) name: names this proxy in its node id, <pod>.<namespace> (default: --workload-name)')
    .option('--service-account <sa>', 'workload service account (its SPIFFE identity)', 'default')
    .option('--labels <k=v,...>', 'workload labels, e.g. app=reviews,version=v1')
    .option('--instance-ip <ip>', 'workload IP (default: 127.0.0.1 in explicit mode, else the first non-loopback IPv4)')
    .option('--cluster-id <id>', 'cluster id (CLUSTER_ID)', 'Kubernetes')
    .option('--workload-port <port[/name][/protocol]>', 'a port the application serves, e.g. 9080/http/HTTP (repeatable)', collect)
    .option('--interception <mode>', 'explicit (no iptables; HTTP_PROXY and per-port listeners) or redirect (iptables)', 'explicit')
    .option('--bind <ip>', 'explicit mode: address the sidecar listens on', '127.0.0.1')
    .option('--outbound-port <n>', 'explicit mode: port of the outbound HTTP proxy listener', '15001')
    .option('--inbound-port <workloadPort=n>', 'explicit mode: sidecar port serving a workload port to the mesh (repeatable)', collect)
    .option('--app-port <workloadPort=n>', 'explicit mode: where the application really listens on 127.0.0.1 (repeatable; default the workload port)', collect)
    .option('--upstream-port <fqdn:port=n>', 'explicit mode: extra loopback listener for one upstream service port (repeatable)', collect)
    .option('--ca-address <host:port>', 'certificate authority (default: the xDS host, port 15012)')
    .option('--ca-root-file <file>', 'root certificate(s) to trust for the CA (enables workload certificates)')
    .option('--token-file <file>', 'bootstrap token sent to the CA and the control plane')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option('--workload-group <name>', 'register under this WorkloadGroup of --namespace (AUTO_REGISTER_GROUP): its template completes the endpoint')
    .option('--workload-entry <name>', 'stand for this existing WorkloadEntry of --namespace (WORKLOAD_ENTRY): it is the endpoint, and its health comes from this proxy when it is annotated proxy.istio.io/health-checks-enabled: "true"')
    .option('--readiness-probe <file|json>', 'run this probe beside the workload and report its health to the control plane: a file holding a WorkloadGroup (its spec.probe, and its name as --workload-group) or a probe in the WorkloadGroup probe shape, or that probe inline as JSON')
    .option('--workload-pid-file <file>', 'the application\'s pid file: while it is missing or its process is gone the workload is unhealthy at once (not after failureThreshold probes), and must pass its probe again')
    .option('--probe-env-file <file>', 'JSON object of the environment exec probes run in (default: this proxy\'s own environment, as Istio\'s agent)');
}

const PROTOCOLS = ['HTTP', 'HTTP2', 'HTTPS', 'GRPC', 'GRPC-WEB', 'TCP', 'TLS', 'MONGO', 'MYSQL', 'REDIS', 'UDP'];
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function parsePort(v: string | undefined, flag: string, errors: string[]): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) {
    errors.push(`${flag}: "${v}" is not a port (1-65535)`);
    return undefined;
  }
  return n;
}

/** HOST:PORT (IPv6 as [addr]:port). */
export function parseHostPort(v: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new RigError('MESH_ERR_USAGE', `${flag}: "${v}" is not HOST:PORT (e.g. 127.0.0.1:15010)`);
  return { host: m[1] ?? m[2]!, port };
}

function parseLabels(v: string | undefined, errors: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!v) return labels;
  for (const pair of v.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    if (eq < 0) errors.push(`--labels: "${pair}" is not key=value`);
    else if (!LABEL_KEY.test(key) || key.length > 316) errors.push(`--labels: invalid label key "${key}"`);
    else if (!LABEL_VALUE.test(value) || value.length > 63) errors.push(`--labels: invalid value "${value}" for label ${key}`);
    else labels[key] = value;
  }
  return labels;
}

/** `P=N` pairs (repeatable flags) keyed by the left side. */
function parsePortMap(values: string[] | undefined, flag: string, keyOk: (k: string) => boolean, keyHint: string, errors: string[], seen = new Set<string>()): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values ?? []) {
    const eq = v.lastIndexOf('=');
    const key = eq < 0 ? '' : v.slice(0, eq);
    if (eq < 0 || !keyOk(key)) {
      errors.push(`${flag}: "${v}" is not ${keyHint}=PORT`);
      continue;
    }
    if (seen.has(key)) errors.push(`${flag}: ${key} is given twice`);
    seen.add(key);
    const port = parsePort(v.slice(eq + 1), flag, errors);
    if (port !== undefined) out[key] = port;
  }
  return out;
}

interface WorkloadPort {
  port: number;
  name?: string;
  protocol?: string;
}

function parseWorkloadPorts(values: string[] | undefined, errors: string[]): WorkloadPort[] {
  const ports: WorkloadPort[] = [];
  for (const v of values ?? []) {
    const [p, name, protocol, ...rest] = v.split('/');
    const port = parsePort(p, '--workload-port', errors);
    if (rest.length) errors.push(`--workload-port: "${v}" has too many parts; use PORT[/name][/protocol]`);
    if (port === undefined) continue;
    const wp: WorkloadPort = { port };
    if (name) {
      if (!NAME.test(name)) errors.push(`--workload-port: invalid port name "${name}"`);
      wp.name = name;
    }
    if (protocol) {
      const proto = protocol.toUpperCase();
      if (!PROTOCOLS.includes(proto)) errors.push(`--workload-port: unknown protocol "${protocol}"; use one of ${PROTOCOLS.join(', ')}`);
      wp.protocol = proto;
    }
    if (ports.some((x) => x.port === port)) errors.push(`--workload-port: port ${port} is given twice`);
    ports.push(wp);
  }
  return ports;
}

function defaultInstanceIp(explicit: boolean): string {
  if (explicit) return '127.0.0.1';
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

type ManifestLike = { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; spec?: { probe?: unknown } } | null;

/**
 * `--readiness-probe`: inline JSON (starts with `{`) or a YAML/JSON file holding a probe or
 * manifests with a WorkloadGroup (the one --workload-group names, when there are several), whose
 * name is then the group unless --workload-group or --workload-entry says otherwise.
 */
function readinessProbeFlag(v: string, namespace: string, named: string | undefined, errors: string[]): { probe?: unknown; group?: string } {
  const inline = v.trimStart().startsWith('{');
  let docs: unknown[];
  try {
    docs = inline ? [JSON.parse(v)] : parseYamlDocuments(fs.readFileSync(v, 'utf8')).filter((d) => d !== null && d !== undefined);
  } catch (err) {
    errors.push(`--readiness-probe: ${inline ? 'not JSON' : `cannot read ${v}`}: ${(err as Error).message}`);
    return {};
  }
  const where = inline ? '--readiness-probe' : `--readiness-probe ${v}`;
  let doc = docs[0];
  if (docs.length !== 1 || (doc as ManifestLike)?.kind !== undefined) {
    const groups = docs.filter((d) => (d as ManifestLike)?.kind === 'WorkloadGroup') as ManifestLike[];
    const picked = named === undefined ? groups : groups.filter((g) => g?.metadata?.name === named);
    if (picked.length !== 1) {
      const names = groups.map((g) => String(g?.metadata?.name)).join(', ');
      errors.push(`${where}: ${!groups.length ? 'no WorkloadGroup and not a probe' : picked.length ? `several WorkloadGroups (${names}): name one with --workload-group` : `no WorkloadGroup ${named} (it has ${names})`}`);
      return {};
    }
    doc = picked[0];
  }
  let probe = doc;
  let group: string | undefined;
  const d = doc as ManifestLike;
  if (d && typeof d === 'object' && d.kind !== undefined) {
    probe = d.spec?.probe;
    group = typeof d.metadata?.name === 'string' ? d.metadata.name : undefined;
    const ns = d.metadata?.namespace ?? 'default';
    if (ns !== namespace) errors.push(`${where}: WorkloadGroup ${String(group)} is in namespace ${String(ns)}, the proxy in ${namespace} (set --namespace ${String(ns)})`);
    if (probe === undefined) errors.push(`${where}: WorkloadGroup ${String(group)} has no spec.probe`);
  }
  for (const e of probe === undefined ? [] : readinessProbeErrors(probe)) errors.push(`${where}: ${d?.kind ? 'spec.probe' : 'probe'}: ${e}`);
  return { probe, group };
}

function fail(errors: string[]): never {
  throw new RigError('MESH_ERR_USAGE', `invalid proxy flags:\n  ${errors.join('\n  ')}`);
}

function xdsCluster(host: string, port: number, tls: EnvoyJson | undefined): EnvoyJson {
  const isIp = /^[\d.]+$/.test(host) || host.includes(':');
  return {
    name: 'xds-grpc',
    type: isIp ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '1s',
    load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }] },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_PROTOCOL_OPTIONS_TYPE, explicit_http_config: { http2_protocol_options: {} } },
    },
    ...(tls ? { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: tls } } : {}),
  };
}

/**
 * Node metadata from the environment, as Istio's agent: ISTIO_META_<KEY>=v gives KEY: "v" and
 * ISTIO_METAJSON_<KEY>=<json> gives KEY parsed (e.g. ISTIO_META_HTTP10=1). The flags win over both.
 */
function envMetadata(env: NodeJS.ProcessEnv, errors: string[]): EnvoyJson {
  const out: EnvoyJson = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (name.startsWith('ISTIO_METAJSON_') && name.length > 15) {
      try {
        out[name.slice(15)] = JSON.parse(value) as unknown;
      } catch (err) {
        errors.push(`${name}: not JSON (${(err as Error).message})`);
      }
    } else if (name.startsWith('ISTIO_META_') && name.length > 11) out[name.slice(11)] = value;
  }
  return out;
}

/** The ProxyConfig of the PROXY_CONFIG variable (YAML or JSON, as Istio's agent), else of ISTIO_METAJSON_PROXY_CONFIG. */
function envProxyConfig(env: NodeJS.ProcessEnv, fromMeta: unknown, errors: string[]): EnvoyJson {
  let pc = fromMeta;
  const text = env.PROXY_CONFIG;
  if (text !== undefined && text.trim() !== '') {
    try {
      pc = parseYaml(text);
    } catch (err) {
      errors.push(`PROXY_CONFIG: not YAML or JSON (${(err as Error).message.split('\n')[0]})`);
      return {};
    }
  }
  if (pc === undefined || pc === null) return {};
  if (typeof pc !== 'object' || Array.isArray(pc)) {
    errors.push(`PROXY_CONFIG: must be a ProxyConfig object, e.g. '{"gatewayTopology": {"numTrustedProxies": 1}}'`);
    return {};
  }
  return pc as EnvoyJson;
}

/**
 * Istio's stats matcher for this proxy, as pilot-agent makes it: Istio's defaults with PROXY_CONFIG's
 * proxyStatsMatcher, or the sidecar.istio.io/statsInclusion* annotations of node metadata ANNOTATIONS
 * (ISTIO_METAJSON_ANNOTATIONS, what Istio's agent reads from the pod) in their place.
 */
function istioStatsMatcherOf(metadata: EnvoyJson, proxyConfig: EnvoyJson, ip: string, errors: string[]): EnvoyJson {
  const matcherErrors = checkProxyStatsMatcher(proxyConfig.proxyStatsMatcher, 'PROXY_CONFIG.proxyStatsMatcher');
  errors.push(...matcherErrors);
  const annotations = metadata.ANNOTATIONS;
  const annotationsOk = annotations === undefined || (typeof annotations === 'object' && annotations !== null && !Array.isArray(annotations) && Object.values(annotations).every((v) => typeof v === 'string'));
  if (!annotationsOk) errors.push('ISTIO_METAJSON_ANNOTATIONS: node metadata ANNOTATIONS must be a map of strings (the pod\'s annotations)');
  return istioStatsMatcher({
    proxyStatsMatcher: matcherErrors.length ? undefined : (proxyConfig.proxyStatsMatcher as ProxyStatsMatcher | undefined),
    annotations: annotationsOk ? (annotations as Record<string, string> | undefined) : undefined,
    instanceIps: ip.split(','),
    exitOnZeroActiveConnections: metadata.EXIT_ON_ZERO_ACTIVE_CONNECTIONS === 'true',
  });
}

/** Builds the Envoy v3 bootstrap for a proxy fetching its config over ADS. Throws a RigError listing every bad flag. */
export function bootstrapFromOptions(opts: XdsCliOptions, env: NodeJS.ProcessEnv = process.env): EnvoyJson {
  const errors: string[] = [];
  if (!opts.xdsAddress) fail(['--xds-address is required to build a bootstrap']);
  let xds: { host: string; port: number } | undefined;
  try {
    xds = parseHostPort(opts.xdsAddress, '--xds-address');
  } catch (err) {
    errors.push((err as Error).message);
  }
  const mode = opts.mode ?? 'sidecar';
  if (mode !== 'sidecar' && mode !== 'router') errors.push(`--mode: "${mode}" is not sidecar or router`);
  const interception = opts.interception ?? 'explicit';
  if (interception !== 'explicit' && interception !== 'redirect') errors.push(`--interception: "${interception}" is not explicit or redirect`);
  const namespace = opts.namespace ?? 'default';
  if (!NAME.test(namespace)) errors.push(`--namespace: invalid namespace "${namespace}"`);
  const serviceAccount = opts.serviceAccount ?? 'default';
  if (!NAME.test(serviceAccount)) errors.push(`--service-account: invalid service account "${serviceAccount}"`);
  const workload = opts.workloadName;
  if (!workload) errors.push('--workload-name is required with --xds-address (it names the proxy to the control plane)');
  else if (!NAME.test(workload)) errors.push(`--workload-name: invalid name "${workload}"`);
  const pod = opts.podName ?? workload;
  if (opts.podName !== undefined && !NAME.test(opts.podName)) errors.push(`--pod-name: invalid name "${opts.podName}"`);
  const labels = parseLabels(opts.labels, errors);
  const ports = parseWorkloadPorts(opts.workloadPort, errors);
  const explicit = mode === 'sidecar' && interception === 'explicit';
  const ip = opts.instanceIp ?? defaultInstanceIp(explicit);
  if (!/^[\d.]+$/.test(ip) && !ip.includes(':')) errors.push(`--instance-ip: "${ip}" is not an IP address`);
  if (opts.xdsTls && !opts.caRootFile) errors.push('--xds-tls needs --ca-root-file (the root that signed the control plane certificate)');
  const probe = opts.readinessProbe === undefined ? {} : readinessProbeFlag(opts.readinessProbe, namespace, opts.workloadGroup, errors);
  const entry = opts.workloadEntry;
  const group = opts.workloadGroup ?? (entry === undefined ? probe.group : undefined);
  if (group !== undefined && !NAME.test(group)) errors.push(`--workload-group: invalid name "${group}"`);
  if (entry !== undefined && !NAME.test(entry)) errors.push(`--workload-entry: invalid name "${entry}"`);
  if (entry !== undefined && opts.workloadGroup !== undefined) errors.push('--workload-group and --workload-entry exclude each other: a proxy registers under a group or stands for an existing entry');

  const metadata: EnvoyJson = {
    ISTIO_VERSION,
    // Istio's injector sets ISTIO_META_MESH_ID to the mesh ID, else the trust domain (its istio.mesh_id span tag and metric label).
    MESH_ID: opts.trustDomain ?? 'cluster.local',
    ...envMetadata(env, errors),
    NAMESPACE: namespace,
    LABELS: labels,
    SERVICE_ACCOUNT: serviceAccount,
    INSTANCE_IPS: ip,
    WORKLOAD_NAME: workload ?? '',
    CLUSTER_ID: opts.clusterId ?? 'Kubernetes',
    INTERCEPTION_MODE: explicit || mode === 'router' ? 'NONE' : 'REDIRECT',
    RIG_WORKLOAD_PORTS: ports,
  };
  if (group !== undefined) metadata.AUTO_REGISTER_GROUP = group;
  if (entry !== undefined) metadata.WORKLOAD_ENTRY = entry;
  // Istio's agent config (ProxyConfig), from its PROXY_CONFIG environment variable (what Istio's injector
  // writes from the proxy.istio.io/config annotation) or ISTIO_METAJSON_PROXY_CONFIG; the control plane
  // reads its gatewayTopology. --readiness-probe adds the readinessProbe the agent runs (the control plane then health-checks the workload).
  const proxyConfig = { ...envProxyConfig(env, metadata.PROXY_CONFIG, errors), ...(probe.probe !== undefined ? { readinessProbe: probe.probe } : {}) };
  if (Object.keys(proxyConfig).length) metadata.PROXY_CONFIG = proxyConfig;
  const statsMatcher = istioStatsMatcherOf(metadata, proxyConfig, ip, errors);
  if (explicit) {
    const known = new Set(ports.map((p) => String(p.port)));
    const isWorkloadPort = (k: string) => known.has(k);
    const inboundGiven = new Set<string>();
    const inboundPorts = parsePortMap(opts.inboundPort, '--inbound-port', isWorkloadPort, 'WORKLOADPORT (a --workload-port)', errors, inboundGiven);
    const appPorts = parsePortMap(opts.appPort, '--app-port', isWorkloadPort, 'WORKLOADPORT (a --workload-port)', errors);
    const upstreamPorts = parsePortMap(opts.upstreamPort, '--upstream-port', (k) => /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:\d{1,5}$/i.test(k), 'FQDN:PORT', errors);
    const missing = ports.filter((p) => !inboundGiven.has(String(p.port))).map((p) => p.port);
    if (missing.length) errors.push(`explicit mode: each --workload-port needs --inbound-port (missing for ${missing.join(', ')}), e.g. --inbound-port ${missing[0]}=<sidecar port>`);
    for (const p of ports) appPorts[String(p.port)] ??= p.port;
    const outboundPort = parsePort(opts.outboundPort ?? '15001', '--outbound-port', errors);
    const bind = opts.bind ?? '127.0.0.1';
    if (!/^[\d.]+$/.test(bind) && !bind.includes(':')) errors.push(`--bind: "${bind}" is not an IP address`);
    const taken = new Map<number, string>();
    const claim = (port: number | undefined, what: string) => {
      if (port === undefined) return;
      const other = taken.get(port);
      if (other) errors.push(`port ${port} is used for both ${other} and ${what}`);
      taken.set(port, what);
    };
    claim(outboundPort, '--outbound-port');
    for (const [k, n] of Object.entries(inboundPorts)) claim(n, `--inbound-port ${k}`);
    for (const [k, n] of Object.entries(upstreamPorts)) claim(n, `--upstream-port ${k}`);
    metadata.RIG_EXPLICIT = { bind, outboundPort, inboundPorts, appPorts, ...(Object.keys(upstreamPorts).length ? { upstreamPorts } : {}) };
  } else if (mode === 'router' && interception === 'explicit' && opts.inboundPort?.length) {
    // A gateway on a shared host (rig up): Gateway server port P is bound at --bind, on the host
    // port --inbound-port P=N (CONTRACTS §3).
    const inboundPorts = parsePortMap(opts.inboundPort, '--inbound-port', (k) => /^\d{1,5}$/.test(k), 'GATEWAYPORT', errors);
    const bind = opts.bind ?? '127.0.0.1';
    if (!/^[\d.]+$/.test(bind) && !bind.includes(':')) errors.push(`--bind: "${bind}" is not an IP address`);
    for (const [flag, v] of [['--app-port', opts.appPort], ['--upstream-port', opts.upstreamPort]] as const) {
      if (v?.length) errors.push(`${flag} only applies to a sidecar with --interception explicit`);
    }
    metadata.RIG_EXPLICIT = { bind, inboundPorts, appPorts: {} };
  } else {
    for (const [flag, v] of [['--inbound-port', opts.inboundPort], ['--app-port', opts.appPort], ['--upstream-port', opts.upstreamPort]] as const) {
      if (v?.length) errors.push(`${flag} only applies to a sidecar with --interception explicit`);
    }
  }
  if (errors.length) fail(errors);

  const tls = opts.xdsTls
    ? { '@type': UPSTREAM_TLS_TYPE, sni: 'istiod.istio-system.svc', common_tls_context: { validation_context: { trusted_ca: { filename: opts.caRootFile } } } }
    : undefined;
  return {
    node: {
      id: `${mode}~${ip}~${pod}.${namespace}~${namespace}.svc.cluster.local`,
      cluster: `${workload}.${namespace}`,
      metadata,
    },
    dynamic_resources: {
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true, grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
      // As Istio's bootstrap: the proxy is not ready before its first clusters and listeners.
      cds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
      lds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
    },
    static_resources: { clusters: [xdsCluster(xds!.host, xds!.port, tls)] },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 15000 } } },
    stats_config: { ...ISTIO_STATS_CONFIG, stats_matcher: statsMatcher },
  };
}

/** The workload identity settings, or undefined when the flags ask for none (no --ca-root-file). */
export function identityFromOptions(opts: XdsCliOptions): IdentityFlags | undefined {
  if (!opts.caRootFile) return undefined;
  let caAddress = opts.caAddress;
  if (!caAddress) {
    if (!opts.xdsAddress) throw new RigError('MESH_ERR_USAGE', '--ca-root-file needs --ca-address (or --xds-address, whose host serves the CA on 15012)');
    const { host } = parseHostPort(opts.xdsAddress, '--xds-address');
    caAddress = `${host.includes(':') ? `[${host}]` : host}:15012`;
  } else {
    parseHostPort(caAddress, '--ca-address');
  }
  return {
    caAddress,
    caRootFile: opts.caRootFile,
    tokenFile: opts.tokenFile,
    trustDomain: opts.trustDomain ?? 'cluster.local',
    namespace: opts.namespace ?? 'default',
    serviceAccount: opts.serviceAccount ?? 'default',
    metadata: { WorkloadName: opts.workloadName ?? '', WorkloadIP: opts.instanceIp ?? '', ClusterID: opts.clusterId ?? 'Kubernetes' },
  };
}
