// A proxy's own admin API, for what only the proxy knows: its log levels (/logging), its
// bootstrap (/config_dump's BootstrapConfigDump, /server_info's version) and its trust bundle
// (the ROOTCA secret of /config_dump's SecretsConfigDump).
import { X509Certificate } from 'node:crypto';
import { RigError } from '../../core/errors.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import { getJson } from './controlplane-client.ts';
import { secretList } from './tables.ts';

/** Envoy's level names, as `istioctl proxy-config log --level` takes them. */
export const ENVOY_LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
/** What `--reset` sets every logger to: rig proxy's default level (Envoy under Istio starts at warning). */
export const DEFAULT_LOG_LEVEL = 'info';

async function adminText(admin: string, path: string, method: 'GET' | 'POST'): Promise<string> {
  const url = new URL(path, admin.endsWith('/') ? admin : admin + '/').toString();
  let res: Response;
  try {
    res = await fetch(url, { method, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    throw new RigError('MESH_ERR_UNAVAILABLE', `cannot reach the proxy admin at ${url}: ${cause} (is the proxy running? pass its admin address with --admin)`);
  }
  const body = await res.text();
  if (!res.ok) throw new RigError(res.status === 404 ? 'MESH_ERR_NOT_FOUND' : 'MESH_ERR_USAGE', `${url} answered ${res.status}: ${body.trim()}`);
  return body;
}

/**
 * `--level` as istioctl reads it: `LEVEL` (every logger) or `logger:level,logger:level,…` (also
 * `logger=level`), in order. Throws a usage error naming the bad item.
 */
export function parseLevelFlag(flag: string): [logger: string | undefined, level: string][] {
  const out: [string | undefined, string][] = [];
  for (const item of flag.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^:=]+)[:=](.+)$/.exec(item);
    const [logger, level] = m ? [m[1]!, m[2]!] : [undefined, item];
    if (!(ENVOY_LOG_LEVELS as readonly string[]).includes(level)) throw new RigError('MESH_ERR_USAGE', `--level: unrecognized logging level "${level}"${logger ? ` for logger ${logger}` : ''} (one of ${ENVOY_LOG_LEVELS.join(', ')})`);
    out.push([logger, level]);
  }
  if (!out.length) throw new RigError('MESH_ERR_USAGE', '--level: give a level (e.g. debug) or logger:level pairs (e.g. xds-client:debug,identity:info)');
  return out;
}

/** Applies each change with its own POST /logging, as istioctl does, then answers the proxy's "active loggers:" list (Envoy takes only POST there). */
export async function logLevels(admin: string, changes: [string | undefined, string][]): Promise<string> {
  for (const [logger, level] of changes) await adminText(admin, `logging?${encodeURIComponent(logger ?? 'level')}=${encodeURIComponent(level)}`, 'POST');
  return adminText(admin, 'logging', 'POST');
}

/** The BootstrapConfigDump section of a config dump (`from` names where it was read, for the error). */
export function bootstrapSection(dump: EnvoyJson, from: string): EnvoyJson {
  const section = ((dump.configs as EnvoyJson[] | undefined) ?? []).find((c) => String(c['@type']).endsWith('.BootstrapConfigDump'));
  if (!section) throw new RigError('MESH_ERR_NOT_FOUND', `${from} has no BootstrapConfigDump`);
  return section;
}

/** The BootstrapConfigDump section of the proxy's config dump. */
export async function bootstrapDump(admin: string): Promise<EnvoyJson> {
  return bootstrapSection((await getJson(admin, 'config_dump')) as EnvoyJson, `${admin}/config_dump`);
}

/** The certificates of the proxy's ROOTCA secret (its trust bundle, as istioctl's rootca-compare reads it). */
export async function rootCertificates(admin: string): Promise<X509Certificate[]> {
  const dump = (await getJson(admin, 'config_dump')) as EnvoyJson;
  const rootCa = secretList(dump).find((s) => s.name === 'ROOTCA');
  const pem = ((rootCa?.validation_context as EnvoyJson | undefined)?.trusted_ca as EnvoyJson | undefined)?.inline_string;
  if (typeof pem !== 'string') throw new RigError('MESH_ERR_NOT_FOUND', `the proxy at ${admin} has no ROOTCA secret yet (no workload certificate: is it a sidecar of a mesh with a CA?)`);
  return (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((c) => new X509Certificate(c));
}

/** Whether two trust bundles share a root certificate (istioctl's checkRootCACertMatchExist). */
export function shareRoot(a: X509Certificate[], b: X509Certificate[]): boolean {
  return a.some((x) => b.some((y) => x.raw.equals(y.raw)));
}

export async function serverInfo(admin: string): Promise<EnvoyJson> {
  return (await getJson(admin, 'server_info')) as EnvoyJson;
}

function envoyBuildVersion(node: EnvoyJson): string | undefined {
  const build = node.user_agent_build_version as EnvoyJson | undefined;
  const v = build?.version as EnvoyJson | undefined;
  if (!v) return undefined;
  const md = (build?.metadata ?? {}) as Record<string, unknown>;
  let s = `${v.major_number ?? 0}.${v.minor_number ?? 0}.${v.patch ?? 0}`;
  if (md['build.label']) s += `-${md['build.label']}`;
  for (const k of ['revision.status', 'build.type', 'ssl.version']) if (md[k]) s += `/${md[k]}`;
  return s;
}

function scalar(v: unknown): string {
  if (v && typeof v === 'object' && !Array.isArray(v)) return Object.entries(v).map(([k, x]) => `${k}=${typeof x === 'object' ? JSON.stringify(x) : String(x)}`).join(',');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * `-o short`: istioctl's version lines (Istio Version, Istio Proxy Version, Envoy Version, each
 * when the node carries it) with the rig proxy's version, preceded by the node id and cluster and
 * followed by the node metadata, one key a line.
 */
export function bootstrapSummary(section: EnvoyJson, info: EnvoyJson | undefined): string {
  const node = ((section.bootstrap as EnvoyJson | undefined)?.node ?? {}) as EnvoyJson;
  const md = (node.metadata ?? {}) as Record<string, unknown>;
  const rows: [string, string | undefined][] = [
    ['Node ID:', node.id as string | undefined],
    ['Node Cluster:', node.cluster as string | undefined],
    ['Rig Version:', typeof info?.version === 'string' ? info.version.replace(/^rigging\//, '') : undefined],
    ['Istio Version:', md.ISTIO_VERSION as string | undefined],
    ['Istio Proxy Version:', typeof md.ISTIO_PROXY_SHA === 'string' ? (md.ISTIO_PROXY_SHA.split(':')[1] ?? md.ISTIO_PROXY_SHA) : undefined],
    ['Envoy Version:', envoyBuildVersion(node)],
  ];
  const present = rows.filter((r): r is [string, string] => !!r[1]);
  const width = Math.max(...present.map(([k]) => k.length)) + 1;
  let out = present.map(([k, v]) => k.padEnd(width) + v + '\n').join('');
  const keys = Object.keys(md).sort();
  if (keys.length) out += 'Node Metadata:\n' + keys.map((k) => `   ${k}: ${scalar(md[k])}\n`).join('');
  return out;
}
