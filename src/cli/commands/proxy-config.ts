// `rig proxy-config {clusters|listeners|routes|endpoints|secret|ecds|all} <proxy>`: a proxy's config in
// istioctl's table shapes, from the control plane's view, (--admin) the proxy's own config_dump or
// (--file) a saved one. `log` (of one proxy, or of every proxy -l picks), `bootstrap` and
// `rootca-compare` ask the proxies' own admin (--admin, or the local mesh's proxy by name).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { RigError } from '../../core/errors.ts';
import { addControlPlaneOptions, controlPlaneUrl, localProxyAdmin } from './controlplane-option.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { AdszEntry } from '../../xds/debug/describe-common.ts';
import { filterDump, type DumpFilter } from '../../xds/debug/dump-filter.ts';

const KINDS = ['clusters', 'listeners', 'routes', 'endpoints', 'secret', 'ecds', 'all', 'log', 'bootstrap', 'rootca-compare'] as const;
type Kind = (typeof KINDS)[number];
// istioctl's filters, each for the kinds it has them.
const FILTERS: Record<keyof DumpFilter, readonly Kind[]> = {
  fqdn: ['clusters'],
  port: ['clusters', 'listeners', 'endpoints'],
  subset: ['clusters'],
  direction: ['clusters'],
  address: ['listeners', 'endpoints'],
  name: ['routes'],
  cluster: ['endpoints'],
  status: ['endpoints'],
};

type ProxyConfigOptions = { controlplane?: string; stateDir: string; admin?: string; file?: string; output?: string; level?: string; reset?: boolean; selector?: string; namespace?: string } & { [K in keyof DumpFilter]?: string };

function dumpFilter(kind: Kind, o: ProxyConfigOptions): DumpFilter {
  const f: DumpFilter = {};
  for (const key of Object.keys(FILTERS) as (keyof DumpFilter)[]) {
    const v = o[key];
    if (v === undefined) continue;
    if (!FILTERS[key].includes(kind)) throw new RigError('MESH_ERR_USAGE', `--${key} filters ${FILTERS[key].join(' or ')}, not ${kind}`);
    if (key === 'port') {
      if (!/^\d{1,5}$/.test(v)) throw new RigError('MESH_ERR_USAGE', `--port: "${v}" is not a port number`);
      f.port = Number(v);
    } else f[key] = v;
  }
  return f;
}

const ALIASES: Record<string, Kind> = { cluster: 'clusters', c: 'clusters', listener: 'listeners', l: 'listeners', route: 'routes', r: 'routes', endpoint: 'endpoints', ep: 'endpoints', secrets: 'secret', s: 'secret', ec: 'ecds', a: 'all', o: 'log', b: 'bootstrap', rc: 'rootca-compare' };

/** The proxy's own admin URL: --admin, else the local mesh's proxy of that name. */
function proxyAdmin(o: ProxyConfigOptions, proxy: string | undefined, what: string): string {
  const admin = o.admin ?? (proxy === undefined ? undefined : localProxyAdmin(o, proxy));
  if (!admin) {
    const which = proxy === undefined ? 'name a proxy of the local mesh' : `"${proxy}" is not a proxy of the local mesh run from ${o.stateDir} (rig status lists them; with --isolation netns its admin is inside its pod)`;
    throw new RigError('MESH_ERR_USAGE', `only the proxy knows its ${what}: ${which}; or pass --admin URL of the proxy`);
  }
  return admin;
}

/** `-l`: the proxies of --namespace (default `default`) whose labels the selector picks, by `<pod>.<namespace>`, from the control plane's /debug/adsz. */
async function selectedProxies(o: ProxyConfigOptions & { selector: string }): Promise<string[]> {
  const { parseSelector } = await import('../../xds/debug/label-selector.ts');
  const { getJson } = await import('../../xds/debug/controlplane-client.ts');
  const { labelsOf, namespaceOf, podName } = await import('../../xds/debug/describe-common.ts');
  const matches = parseSelector(o.selector);
  const namespace = o.namespace ?? 'default';
  const proxies = (await getJson(controlPlaneUrl(o), 'debug/adsz')) as AdszEntry[];
  const picked = proxies.filter((p) => namespaceOf(p) === namespace && matches(labelsOf(p))).map((p) => podName(p.node)).sort();
  if (!picked.length) throw new RigError('MESH_ERR_NOT_FOUND', `no proxy of namespace ${namespace} matches --selector ${o.selector} (connected: ${proxies.map((p) => podName(p.node)).sort().join(', ') || 'none'}; -n picks the namespace)`);
  return picked;
}

/** As istioctl: the same change on each proxy in turn, each one's loggers under its name; the ones that failed are named at the end. */
async function logCommand(proxy: string | undefined, o: ProxyConfigOptions): Promise<void> {
  const a = await import('../../xds/debug/proxy-admin.ts');
  if (o.level !== undefined && o.reset) throw new RigError('MESH_ERR_USAGE', '--level and --reset: give one of them');
  if (o.selector !== undefined && (proxy !== undefined || o.admin)) throw new RigError('MESH_ERR_USAGE', `--selector picks the proxies: give no proxy name${o.admin ? ' nor --admin' : ` (got "${proxy}")`}`);
  const changes = o.reset ? [[undefined, a.DEFAULT_LOG_LEVEL] as [undefined, string]] : o.level !== undefined ? a.parseLevelFlag(o.level) : [];
  if (o.selector === undefined) {
    const active = await a.logLevels(proxyAdmin(o, proxy, 'log levels'), changes);
    process.stdout.write((proxy ? `${proxy}:\n` : '') + active);
    return;
  }
  const failed: string[] = [];
  for (const name of await selectedProxies({ ...o, selector: o.selector })) {
    try {
      process.stdout.write(`${name}:\n${await a.logLevels(proxyAdmin(o, name, 'log levels'), changes)}`);
    } catch (err) {
      failed.push(`${name}: ${(err as Error).message}`);
    }
  }
  if (failed.length) throw new RigError('MESH_ERR_UNAVAILABLE', `error configuring log levels of ${failed.length} prox${failed.length === 1 ? 'y' : 'ies'}:\n  ${failed.join('\n  ')}`);
}

/** istioctl's rootca-compare: whether two proxies trust a common root (their ROOTCA secrets), so that mTLS between them can work. */
async function rootCaCompareCommand(proxies: string[], o: ProxyConfigOptions): Promise<void> {
  if (proxies.length !== 2) throw new RigError('MESH_ERR_USAGE', `rootca-compare compares two proxies: give two names of the local mesh (or admin URLs http://…), got ${proxies.length}`);
  if (o.admin) throw new RigError('MESH_ERR_USAGE', 'rootca-compare takes two proxies: give admin URLs as the proxy arguments instead of --admin');
  const a = await import('../../xds/debug/proxy-admin.ts');
  const admin = (p: string) => (/^https?:\/\//.test(p) ? p : proxyAdmin(o, p, 'trust bundle'));
  const [first, second] = await Promise.all(proxies.map((p) => a.rootCertificates(admin(p))));
  const [x, y] = proxies;
  if (a.shareRoot(first!, second!)) {
    process.stdout.write(`Both [${x}] and [${y}] have the identical ROOTCA, theoretically the connectivity between them is available\n`);
    return;
  }
  throw new RigError('MESH_ERR_UNAVAILABLE', `Both [${x}] and [${y}] have the non identical ROOTCA, theoretically the connectivity between them is unavailable`);
}

/** `--file`: a config dump saved from a proxy's admin (`config_dump?include_eds`), or - for standard input. */
function dumpFile(file: string): EnvoyJson {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new RigError('MESH_ERR_FILE', `--file ${file}: ${(err as Error).message}`);
  }
  try {
    const dump = JSON.parse(text) as EnvoyJson;
    if (Array.isArray(dump.configs)) return dump;
  } catch {
    // reported below
  }
  throw new RigError('MESH_ERR_FILE', `--file ${file}: not an Envoy config dump (JSON with "configs"; save one with curl ADMIN/config_dump?include_eds)`);
}

async function bootstrapCommand(proxy: string | undefined, o: ProxyConfigOptions): Promise<void> {
  const a = await import('../../xds/debug/proxy-admin.ts');
  const format = o.output ?? 'json';
  if (!['json', 'yaml', 'short'].includes(format)) throw new RigError('MESH_ERR_USAGE', `unknown output format "${format}" for bootstrap (json, yaml or short)`);
  const admin = o.file === undefined ? proxyAdmin(o, proxy, 'bootstrap') : undefined;
  const section = admin ? await a.bootstrapDump(admin) : a.bootstrapSection(dumpFile(o.file!), `--file ${o.file}`);
  if (format === 'short') process.stdout.write(a.bootstrapSummary(section, admin ? await a.serverInfo(admin) : undefined));
  else process.stdout.write(format === 'json' ? JSON.stringify(section, null, 4) + '\n' : stringify(section));
}

export function define(cmd: Command): void {
  addControlPlaneOptions(cmd)
    .argument('<kind>', `${KINDS.join(' | ')}`)
    .argument('[proxy...]', '<pod>.<namespace> or node id (not needed with --admin, --file or log -l); rootca-compare takes two (names or admin URLs)')
    .option('--admin <url>', "read the proxy's own admin /config_dump instead (e.g. http://127.0.0.1:15000)")
    .option('-f, --file <path>', 'read a saved config dump (curl ADMIN/config_dump?include_eds > FILE; - for standard input) instead of a proxy')
    .option('-l, --selector <selector>', 'log: every proxy of --namespace with these labels (app=reviews,version!=v1)')
    .option('-n, --namespace <ns>', "log -l: the proxies' namespace (default: default)")
    .option('-o, --output <format>', 'table (default; istioctl\'s short), json or yaml; for bootstrap json (default), yaml or short')
    .option('--fqdn <host>', 'clusters of this service FQDN')
    .option('--port <port>', 'clusters, listeners or endpoints on this port')
    .option('--subset <name>', 'clusters of this subset')
    .option('--direction <dir>', 'clusters of this direction (inbound, outbound)')
    .option('--address <ip>', 'listeners or endpoints on this address')
    .option('--name <name>', 'the route configuration of this name (e.g. 9080, http_proxy)')
    .option('--cluster <name>', 'endpoints of this cluster')
    .option('--status <status>', 'endpoints in this health status (healthy, unhealthy, …)')
    .option('--level <level>', `log: set every logger (LEVEL) or some (logger:level,...); levels ${'trace, debug, info, warning, error, critical, off'}`)
    .option('-r, --reset', 'log: reset every logger to the default level (info)')
    .action(async (kindArg: string, proxies: string[], o: ProxyConfigOptions) => {
      const kind = (KINDS as readonly string[]).includes(kindArg) ? (kindArg as Kind) : ALIASES[kindArg];
      if (!kind) throw new RigError('MESH_ERR_USAGE', `unknown config kind "${kindArg}" (one of ${KINDS.join(', ')})`);
      if (kind !== 'log' && (o.level !== undefined || o.reset)) throw new RigError('MESH_ERR_USAGE', `--level and --reset set log levels (rig proxy-config log), not ${kind}`);
      if (kind !== 'log' && o.selector !== undefined) throw new RigError('MESH_ERR_USAGE', `--selector picks proxies for rig proxy-config log, not ${kind}`);
      if (o.namespace !== undefined && o.selector === undefined) throw new RigError('MESH_ERR_USAGE', '-n is the namespace of the proxies -l picks; name one proxy as <pod>.<namespace>');
      if (kind === 'rootca-compare') return rootCaCompareCommand(proxies, o);
      if (proxies.length > 1) throw new RigError('MESH_ERR_USAGE', `${kind} shows one proxy: got ${proxies.join(', ')}`);
      const proxy = proxies[0];
      if (o.file !== undefined && (proxy !== undefined || o.admin)) throw new RigError('MESH_ERR_USAGE', `--file reads a saved config dump: give no proxy${o.admin ? ' nor --admin' : ` (got "${proxy}")`}`);
      if (o.file !== undefined && kind === 'log') throw new RigError('MESH_ERR_USAGE', '--file holds no log levels: name a running proxy');
      if (kind === 'log') return logCommand(proxy, o);
      if (kind === 'bootstrap') return bootstrapCommand(proxy, o);
      // istioctl calls the table `short` (its default).
      o.output = o.output === undefined || o.output === 'short' ? 'table' : o.output;
      if (!['table', 'json', 'yaml'].includes(o.output)) throw new RigError('MESH_ERR_USAGE', `unknown output format "${o.output}" (table or short, json, yaml)`);
      const filter = dumpFilter(kind, o);
      const client = await import('../../xds/debug/controlplane-client.ts');
      const t = await import('../../xds/debug/tables.ts');
      // Workload certificates go from the CA to the proxy (as Istio's agent serves SDS): only the proxy has them.
      let admin = o.admin;
      if (kind === 'secret' && !admin && o.file === undefined) {
        admin = proxy === undefined ? undefined : localProxyAdmin(o, proxy);
        if (!admin) throw new RigError('MESH_ERR_USAGE', `the control plane does not hold ${proxy ?? 'a proxy'}'s certificates; name a proxy of the local mesh (rig status) or pass --admin URL of the proxy`);
      }
      const dump = filterDump(o.file !== undefined ? dumpFile(o.file) : await client.configDump({ controlplane: controlPlaneUrl(o), admin, proxy }), filter);
      const pick: Record<Exclude<Kind, 'all' | 'log' | 'bootstrap' | 'rootca-compare'>, { list: (d: EnvoyJson) => EnvoyJson[]; table: (d: EnvoyJson) => string }> = {
        clusters: { list: t.clusterList, table: t.clustersTable },
        listeners: { list: t.listenerList, table: t.listenersTable },
        routes: { list: t.routeList, table: t.routesTable },
        endpoints: { list: t.endpointList, table: t.endpointsTable },
        secret: { list: t.secretList, table: t.secretsTable },
        ecds: { list: t.ecdsList, table: t.ecdsTable },
      };
      // istioctl's `all`: clusters, listeners, routes, endpoints and secrets.
      const kinds = kind === 'all' ? (['clusters', 'listeners', 'routes', 'endpoints', 'secret'] as const) : [kind];
      if (o.output === 'table') {
        process.stdout.write(kinds.map((k) => pick[k].table(dump)).join('\n'));
        return;
      }
      const data = kind === 'all' ? dump : pick[kind].list(dump);
      process.stdout.write(o.output === 'json' ? JSON.stringify(data, null, 2) + '\n' : stringify(data));
    });
}
