// `rig proxy-config {clusters|listeners|routes|endpoints|secret|all} <proxy>`: a proxy's config in
// istioctl's table shapes, from the control plane's view or (--admin) the proxy's own config_dump.
// `log` and `bootstrap` ask the proxy's own admin (--admin, or the local mesh's proxy by name).
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { RigError } from '../../core/errors.ts';
import { addControlPlaneOptions, controlPlaneUrl, localProxyAdmin } from './controlplane-option.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import { filterDump, type DumpFilter } from '../../xds/debug/dump-filter.ts';

const KINDS = ['clusters', 'listeners', 'routes', 'endpoints', 'secret', 'all', 'log', 'bootstrap'] as const;
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

type ProxyConfigOptions = { controlplane?: string; stateDir: string; admin?: string; output?: string; level?: string; reset?: boolean } & { [K in keyof DumpFilter]?: string };

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

const ALIASES: Record<string, Kind> = { cluster: 'clusters', c: 'clusters', listener: 'listeners', l: 'listeners', route: 'routes', r: 'routes', endpoint: 'endpoints', ep: 'endpoints', secrets: 'secret', s: 'secret', o: 'log', b: 'bootstrap' };

/** The proxy's own admin URL: --admin, else the local mesh's proxy of that name. */
function proxyAdmin(o: ProxyConfigOptions, proxy: string | undefined, what: string): string {
  const admin = o.admin ?? (proxy === undefined ? undefined : localProxyAdmin(o, proxy));
  if (!admin) {
    const which = proxy === undefined ? 'name a proxy of the local mesh' : `"${proxy}" is not a proxy of the local mesh run from ${o.stateDir} (rig status lists them; with --isolation netns its admin is inside its pod)`;
    throw new RigError('MESH_ERR_USAGE', `only the proxy knows its ${what}: ${which}; or pass --admin URL of the proxy`);
  }
  return admin;
}

async function logCommand(proxy: string | undefined, o: ProxyConfigOptions): Promise<void> {
  const a = await import('../../xds/debug/proxy-admin.ts');
  if (o.level !== undefined && o.reset) throw new RigError('MESH_ERR_USAGE', '--level and --reset: give one of them');
  const changes = o.reset ? [[undefined, a.DEFAULT_LOG_LEVEL] as [undefined, string]] : o.level !== undefined ? a.parseLevelFlag(o.level) : [];
  const active = await a.logLevels(proxyAdmin(o, proxy, 'log levels'), changes);
  process.stdout.write((proxy ? `${proxy}:\n` : '') + active);
}

async function bootstrapCommand(proxy: string | undefined, o: ProxyConfigOptions): Promise<void> {
  const a = await import('../../xds/debug/proxy-admin.ts');
  const format = o.output ?? 'json';
  if (!['json', 'yaml', 'short'].includes(format)) throw new RigError('MESH_ERR_USAGE', `unknown output format "${format}" for bootstrap (json, yaml or short)`);
  const admin = proxyAdmin(o, proxy, 'bootstrap');
  const section = await a.bootstrapDump(admin);
  if (format === 'short') process.stdout.write(a.bootstrapSummary(section, await a.serverInfo(admin)));
  else process.stdout.write(format === 'json' ? JSON.stringify(section, null, 4) + '\n' : stringify(section));
}

export function define(cmd: Command): void {
  addControlPlaneOptions(cmd)
    .argument('<kind>', `${KINDS.join(' | ')}`)
    .argument('[proxy]', '<pod>.<namespace> or node id (not needed with --admin)')
    .option('--admin <url>', "read the proxy's own admin /config_dump instead (e.g. http://127.0.0.1:15000)")
    .option('-o, --output <format>', 'table (default), json or yaml; for bootstrap json (default), yaml or short')
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
    .action(async (kindArg: string, proxy: string | undefined, o: ProxyConfigOptions) => {
      const kind = (KINDS as readonly string[]).includes(kindArg) ? (kindArg as Kind) : ALIASES[kindArg];
      if (!kind) throw new RigError('MESH_ERR_USAGE', `unknown config kind "${kindArg}" (one of ${KINDS.join(', ')})`);
      if (kind !== 'log' && (o.level !== undefined || o.reset)) throw new RigError('MESH_ERR_USAGE', `--level and --reset set log levels (rig proxy-config log), not ${kind}`);
      if (kind === 'log') return logCommand(proxy, o);
      if (kind === 'bootstrap') return bootstrapCommand(proxy, o);
      o.output ??= 'table';
      if (!['table', 'json', 'yaml'].includes(o.output)) throw new RigError('MESH_ERR_USAGE', `unknown output format "${o.output}" (table, json or yaml)`);
      const filter = dumpFilter(kind, o);
      const client = await import('../../xds/debug/controlplane-client.ts');
      const t = await import('../../xds/debug/tables.ts');
      // Workload certificates go from the CA to the proxy (as Istio's agent serves SDS): only the proxy has them.
      let admin = o.admin;
      if (kind === 'secret' && !admin) {
        admin = proxy === undefined ? undefined : localProxyAdmin(o, proxy);
        if (!admin) throw new RigError('MESH_ERR_USAGE', `the control plane does not hold ${proxy ?? 'a proxy'}'s certificates; name a proxy of the local mesh (rig status) or pass --admin URL of the proxy`);
      }
      const dump = filterDump(await client.configDump({ controlplane: controlPlaneUrl(o), admin, proxy }), filter);
      const pick: Record<Exclude<Kind, 'all' | 'log' | 'bootstrap'>, { list: (d: EnvoyJson) => EnvoyJson[]; table: (d: EnvoyJson) => string }> = {
        clusters: { list: t.clusterList, table: t.clustersTable },
        listeners: { list: t.listenerList, table: t.listenersTable },
        routes: { list: t.routeList, table: t.routesTable },
        endpoints: { list: t.endpointList, table: t.endpointsTable },
        secret: { list: t.secretList, table: t.secretsTable },
      };
      const kinds = kind === 'all' ? (Object.keys(pick) as (keyof typeof pick)[]) : [kind];
      if (o.output === 'table') {
        process.stdout.write(kinds.map((k) => pick[k].table(dump)).join('\n'));
        return;
      }
      const data = kind === 'all' ? dump : pick[kind].list(dump);
      process.stdout.write(o.output === 'json' ? JSON.stringify(data, null, 2) + '\n' : stringify(data));
    });
}
