// Loads an Envoy v3 Bootstrap (YAML or JSON file): checks it against the proto (unknown fields,
// types, with paths), and extracts what the proxy uses: node, static_resources, dynamic_resources
// admin and layered_runtime. Top-level sections we do not implement are reported as warnings.
import fs from 'node:fs';
import { parseYaml } from './yaml-file.ts';
import { checkMessage, type EnvoyJson } from '../../envoy/index.ts';
import { RigError } from '../../core/errors.ts';
import { Issues, Reader } from '../config/reader.ts';
import type { NodeInfo } from '../context.ts';
import type { StaticResources } from '../runtime.ts';
import { readOverloadConfig, type OverloadConfig } from '../overload/overload-config.ts';
import { DEFAULT_FLUSH_INTERVAL_MS } from '../stats/stats.ts';
import { readStatsConfig, type StatsConfig } from '../stats/stats-config.ts';
import { readLayeredRuntime, type RuntimeLayerConfig } from '../envoy-runtime/index.ts';

export interface Bootstrap {
  readonly node: NodeInfo;
  readonly staticResources: StaticResources;
  readonly dynamic: boolean;
  readonly admin?: { address: string; port: number };
  /** overload_manager, compiled (src/proxy/overload). */
  readonly overload?: OverloadConfig;
  /** stats_flush_interval: the length of a histogram's "interval" quantiles in /stats. */
  readonly statsFlushIntervalMs: number;
  /** stats_config: tags for Prometheus names, the stats matcher, histogram buckets (Envoy's defaults when absent). */
  readonly statsConfig?: StatsConfig;
  /** layered_runtime, read (src/proxy/envoy-runtime); Envoy's default layers when absent. */
  readonly runtimeLayers: RuntimeLayerConfig[];
  readonly raw: EnvoyJson;
  readonly warnings: string[];
}

export function readBootstrapFile(file: string): EnvoyJson {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RigError('MESH_ERR_FILE', `cannot read bootstrap ${file}: ${(e as Error).message}`);
  }
  try {
    const doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('expected a mapping at the top level');
    return doc as EnvoyJson;
  } catch (e) {
    throw new RigError('MESH_ERR_INVALID_CONFIG', `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
}

/** Validates and splits a bootstrap; throws a RigError listing every problem. */
export function parseBootstrap(raw: EnvoyJson, source: string): Bootstrap {
  const schema = checkMessage('envoy.config.bootstrap.v3.Bootstrap', raw, { envoyFileForms: true });
  if (schema.length) {
    throw new RigError('MESH_ERR_INVALID_CONFIG', `${source}: invalid Envoy bootstrap:\n` + schema.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n'));
  }
  const issues = new Issues();
  const r = new Reader(raw, '', issues);
  const n = r.obj('node');
  const node: NodeInfo = { id: n?.str('id') ?? '', cluster: n?.str('cluster') ?? '', metadata: (n?.opaque('metadata') as Record<string, unknown> | undefined) ?? {} };
  // Sent to the control plane with the node (xds-client.ts), their one use in Envoy too (rig has no
  // zone-aware routing, which would also need cluster_manager.local_cluster_name).
  n?.accept('locality', 'user_agent_name', 'user_agent_version', 'user_agent_build_version', 'extensions', 'client_features', 'listening_addresses');
  n?.done();
  const sr = r.obj('static_resources');
  const staticResources: StaticResources = {
    listeners: (sr?.list('listeners') ?? []) as EnvoyJson[],
    clusters: (sr?.list('clusters') ?? []) as EnvoyJson[],
    secrets: (sr?.list('secrets') ?? []) as EnvoyJson[],
  };
  sr?.done();
  const dr = r.obj('dynamic_resources');
  // Read (and checked) by xds-server-target.ts when the proxy connects.
  if (dr) dr.accept(...Object.keys(dr.raw));
  let admin: Bootstrap['admin'];
  const a = r.obj('admin');
  if (a) {
    const sa = a.obj('address')?.obj('socket_address');
    if (sa) {
      admin = { address: sa.str('address', '127.0.0.1'), port: sa.num('port_value', 15000) };
      sa.accept('protocol');
      sa.done();
    }
    // profile_path: where Envoy's CPU profiler writes (rig profiles with node --cpu-prof).
    a.accept('address', 'profile_path');
    const logPath = a.str('access_log_path');
    if (logPath && logPath !== '/dev/null') issues.warn(a.at('access_log_path'), 'admin access logs are not supported; admin requests are not logged');
    if (a.list('access_log').length) issues.warn(a.at('access_log'), 'admin access logs are not supported; admin requests are not logged');
    if (a.list('socket_options').length) issues.warn(a.at('socket_options'), 'socket options are not supported and are ignored');
    a.done();
  }
  const om = r.obj('overload_manager');
  const overload = om ? readOverloadConfig(om) : undefined;
  // stats_flush_interval only closes histogram intervals (sinks are not supported). cluster_manager
  // fields are named by done().
  const statsFlushIntervalMs = r.durationMs('stats_flush_interval', DEFAULT_FLUSH_INTERVAL_MS);
  if (statsFlushIntervalMs < 1 || statsFlushIntervalMs > 300_000) issues.error(r.at('stats_flush_interval'), 'must be between 1ms and 300s, as in Envoy');
  const runtimeLayers = readLayeredRuntime(r.obj('layered_runtime'));
  if (runtimeLayers.some((l) => l.kind === 'rtds' && !l.file) && !dr?.has('ads_config')) issues.error('layered_runtime', 'an rtds_layer is fetched over ADS: the bootstrap needs dynamic_resources.ads_config');
  const statsConfig = readStatsConfig(r.obj('stats_config'));
  r.accept('bootstrap_extensions', 'stats_sinks', 'tracing');
  r.obj('cluster_manager')?.done();
  for (const k of ['tracing', 'stats_sinks', 'bootstrap_extensions']) if (r.has(k)) issues.warn(k, `${k} is not supported by rig proxy and is ignored`);
  r.done();
  if (issues.errors.length) throw new RigError('MESH_ERR_INVALID_CONFIG', `${source}: ${issues.errors.join('; ')}`);
  return { node, staticResources, dynamic: dr !== undefined, admin, overload, statsFlushIntervalMs, statsConfig, runtimeLayers, raw, warnings: issues.warnings };
}
