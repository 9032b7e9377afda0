// Reads the bootstrap's layered_runtime into layer configs (envoy-runtime.ts). Without
// layered_runtime the layers are Envoy's default: an empty static layer "base" and an admin layer.
// An rtds_layer is fetched over the ADS stream (rtds_config: { ads: {} }) or read from a watched
// file (path / path_config_source, a DiscoveryResponse as Envoy's); an api_config_source is refused. Static layer keys that switch Envoy
// features rig proxy does not have are named in a warning; any other key takes effect wherever a
// config names it as a runtime_key.
import path from 'node:path';
import type { Reader } from '../config/reader.ts';
import { parseDuration } from '../../envoy/index.ts';
import { flattenStruct, type RuntimeEntry } from './entry.ts';
import { DEFAULT_RUNTIME_LAYERS, type RtdsFile, type RuntimeLayerConfig } from './envoy-runtime.ts';

/**
 * Runtime keys Istio's bootstrap sets whose value rig proxy already behaves as: no global
 * downstream connection limit, no RE2 program-size limits (regexes are compiled by V8).
 */
const QUIET_KEYS: ReadonlySet<string> = new Set(['overload.global_downstream_max_connections', 're2.max_program_size.error_level', 're2.max_program_size.warn_level']);

/** Key namespaces of Envoy's own features; keys there take effect in rig proxy only when listed in READ_KEYS. */
const ENVOY_FEATURE_PREFIXES = ['envoy.', 'overload.', 're2.', 'upstream.', 'health_check.', 'http.', 'router.', 'tracing.', 'circuit_breakers.', 'outlier_detection.', 'access_log.', 'ratelimit.', 'zone_routing.'];

/** Envoy feature keys rig proxy reads (beyond keys named by runtime_key fields in configs). */
const READ_PREFIXES = ['fault.http.', 'upstream.healthy_panic_threshold', 'upstream.warmup.aggression', 'tracing.random_sampling', 'tracing.global_enabled', 'tracing.client_enabled'];

function unimplemented(key: string): boolean {
  if (QUIET_KEYS.has(key) || READ_PREFIXES.some((p) => key.startsWith(p))) return false;
  return ENVOY_FEATURE_PREFIXES.some((p) => key.startsWith(p));
}

/** RTDS over ADS or from a file: the resource name, the source and the first fetch's timeout (Envoy's default 15 s). */
function readRtdsLayer(name: string, r: Reader): RuntimeLayerConfig {
  const resource = r.str('name');
  if (!resource) r.issues.error(r.at('name'), 'an rtds_layer needs the name of the Runtime resource to subscribe to');
  const src = r.obj('rtds_config');
  let initialFetchTimeoutMs = 15_000;
  let file: RtdsFile | undefined;
  const pcs = src?.obj('path_config_source');
  const filePath = pcs?.str('path') || src?.str('path') || '';
  if (src?.has('ads')) src.obj('ads')?.done();
  else if (filePath) {
    const wd = pcs?.obj('watched_directory');
    file = { path: path.resolve(filePath), dir: path.resolve(wd?.str('path') || path.dirname(filePath)) };
    wd?.done();
  } else r.issues.error(r.at('rtds_config'), 'rig proxy fetches an rtds_layer over the ADS stream (rtds_config: { ads: {} }, with dynamic_resources.ads_config) or from a file (path_config_source)');
  pcs?.done();
  if (src) {
    src.accept('resource_api_version');
    const t = src.str('initial_fetch_timeout');
    if (t) {
      const { seconds, nanos } = parseDuration(t);
      initialFetchTimeoutMs = Math.max(0, seconds * 1000 + nanos / 1e6);
    }
    for (const k of ['api_config_source', 'self', 'authorities']) {
      if (src.has(k)) src.issues.error(src.at(k), `${k} is not supported for an rtds_layer; rig proxy fetches it over the ADS stream (ads: {}) or from a file (path_config_source)`);
    }
    src.done();
  }
  r.done();
  return { name, kind: 'rtds', resource, initialFetchTimeoutMs, ...(file && { file }) };
}

export function readLayeredRuntime(lr: Reader | undefined): RuntimeLayerConfig[] {
  if (!lr) return [...DEFAULT_RUNTIME_LAYERS];
  const out: RuntimeLayerConfig[] = [];
  const names = new Set<string>();
  let admins = 0;
  for (const layer of lr.objs('layers')) {
    const name = layer.str('name');
    if (!name) layer.issues.error(layer.at('name'), 'a runtime layer needs a name');
    else if (names.has(name)) layer.issues.error(layer.at('name'), `duplicate runtime layer name "${name}"`);
    names.add(name);
    if (layer.has('static_layer')) {
      let values: Map<string, RuntimeEntry> = new Map();
      try {
        values = flattenStruct(layer.get('static_layer'));
      } catch (e) {
        layer.issues.error(layer.at('static_layer'), (e as Error).message);
      }
      const ignored = [...values.keys()].filter(unimplemented);
      if (ignored.length) layer.issues.warn(layer.at('static_layer'), `these keys switch Envoy features rig proxy does not have, and have no effect: ${ignored.join(', ')}`);
      out.push({ name, kind: 'static', values });
    } else if (layer.has('disk_layer')) {
      const d = layer.obj('disk_layer')!;
      const symlinkRoot = d.str('symlink_root');
      if (!symlinkRoot) d.issues.error(d.at('symlink_root'), 'a disk layer needs symlink_root (the symbolic link to the runtime tree)');
      out.push({ name, kind: 'disk', disk: { symlinkRoot, subdirectory: d.str('subdirectory'), appendServiceCluster: d.bool('append_service_cluster', false) } });
      d.done();
    } else if (layer.has('admin_layer')) {
      if (++admins > 1) layer.issues.error(layer.at('admin_layer'), 'too many admin layers in layered_runtime; at most one may be specified');
      layer.obj('admin_layer')?.done();
      out.push({ name, kind: 'admin' });
    } else if (layer.has('rtds_layer')) {
      out.push(readRtdsLayer(name, layer.obj('rtds_layer')!));
    } else layer.issues.error(layer.path, 'a runtime layer needs one of static_layer, disk_layer, admin_layer, rtds_layer');
    layer.done();
  }
  lr.done();
  return out;
}
