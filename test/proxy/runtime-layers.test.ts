// Envoy's runtime layers (src/proxy/envoy-runtime): static layer flattening, disk layer files,
// layer precedence, admin overrides, handles and the bootstrap's layered_runtime.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { EnvoyRuntime, NoAdminLayerError, flattenStruct, entryFromText, readLayeredRuntime, type RuntimeLayerConfig } from '../../src/proxy/envoy-runtime/index.ts';
import { parseBootstrap } from '../../src/proxy/bootstrap/bootstrap.ts';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { Stats } from '../../src/proxy/stats/stats.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('a static layer flattens nested maps to dotted keys; a numerator/denominator map is a FractionalPercent', () => {
  const m = flattenStruct({ health_check: { min_interval: 5 }, a: { b: { c: 'x', on: true } }, fault: { pct: { numerator: 25, denominator: 'TEN_THOUSAND' } }, neg: -1.5 });
  assert.deepEqual([...m.keys()].sort(), ['a.b.c', 'a.b.on', 'fault.pct', 'health_check.min_interval', 'neg']);
  assert.deepEqual(m.get('health_check.min_interval'), { raw: '5', double: 5, uint: 5, bool: true });
  assert.deepEqual(m.get('a.b.on'), { raw: 'true', bool: true });
  assert.deepEqual(m.get('fault.pct')!.fraction, { numerator: 25, denominator: 10_000 });
  assert.equal(m.get('neg')!.uint, undefined);
  assert.throws(() => flattenStruct({ a: [1] }), /a: a runtime value cannot be a list/);
  assert.equal(flattenStruct({ f: { numerator: 1, denominator: 'THOUSAND' } }).get('f')!.fraction, undefined, 'an unknown denominator: a value, not a FractionalPercent');
  assert.deepEqual([...flattenStruct({ e: {} }).keys()], ['e'], 'an empty map is a value');
});

test('disk and admin values read as YAML, as Envoy does: booleans, numbers (uint floored, bool when whole), FractionalPercent maps', () => {
  assert.deepEqual(entryFromText('TRUE'), { raw: 'TRUE', bool: true });
  assert.deepEqual(entryFromText('42'), { raw: '42', double: 42, uint: 42, bool: true });
  assert.deepEqual(entryFromText('0.5'), { raw: '0.5', double: 0.5, uint: 0 });
  assert.deepEqual(entryFromText('-3'), { raw: '-3', double: -3, bool: true });
  assert.deepEqual(entryFromText('abc'), { raw: 'abc' });
  assert.deepEqual(entryFromText('{numerator: 5, denominator: TEN_THOUSAND}').fraction, { numerator: 5, denominator: 10_000 });
});

function diskTree(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
}

test('later layers override earlier ones; the admin layer takes /runtime_modify values and an empty value removes one', (t) => {
  const root = tempDir(t, 'runtime-layers-');
  diskTree(path.join(root, 'v1'), { 'envoy/k/disk': '# a comment line\n7\n', 'envoy/k/both': 'disk', 'envoy_override/sidecar/k/both': 'override' });
  fs.symlinkSync(path.join(root, 'v1'), path.join(root, 'current'));
  const stats = new Stats();
  const layers: RuntimeLayerConfig[] = [
    { name: 'static', kind: 'static', values: flattenStruct({ k: { static: 1, both: 'static', disk: 3 } }) },
    { name: 'disk', kind: 'disk', disk: { symlinkRoot: path.join(root, 'current'), subdirectory: 'envoy', appendServiceCluster: false } },
    { name: 'override', kind: 'disk', disk: { symlinkRoot: path.join(root, 'current'), subdirectory: 'envoy_override', appendServiceCluster: true } },
    { name: 'missing', kind: 'disk', disk: { symlinkRoot: path.join(root, 'nowhere'), subdirectory: 'envoy', appendServiceCluster: false } },
    { name: 'admin', kind: 'admin' },
  ];
  const rt = new EnvoyRuntime(layers, { stats, serviceCluster: 'sidecar' });
  const disk = rt.uint('k.disk', 0);
  const both = rt.get('k.both');
  assert.equal(disk.value, 7, 'disk over static; the comment line is dropped');
  assert.equal(both?.raw, 'override', 'the service cluster directory over the plain one');
  assert.deepEqual(rt.dump(), {
    layers: ['static', 'disk', 'override', 'admin'],
    entries: {
      'k.both': { final_value: 'override', layer_values: ['static', 'disk', 'override', ''] },
      'k.disk': { final_value: '7', layer_values: ['3', '7', '', ''] },
      'k.static': { final_value: '1', layer_values: ['1', '', '', ''] },
    },
  });
  rt.modify([['k.disk', '9']]);
  assert.equal(disk.value, 9, 'a handle follows the new snapshot');
  assert.equal(stats.gauge('runtime.admin_overrides_active').value, 1);
  rt.modify([['k.disk', '']]);
  assert.equal(disk.value, 7);
  assert.equal(stats.gauge('runtime.admin_overrides_active').value, 0);
  assert.equal(stats.gauge('runtime.num_layers').value, 4);
  assert.equal(stats.gauge('runtime.num_keys').value, 3);
  assert.equal(stats.counter('runtime.load_success').value, 3);
  assert.equal(stats.counter('runtime.override_dir_exists').value, 3, 'two disk layers loaded');
  assert.throws(() => new EnvoyRuntime([layers[0]!]).modify([['a', 'b']]), NoAdminLayerError);
});

test('handles read as Envoy\'s snapshot: featureEnabled, RuntimeUInt32, RuntimeFeatureFlag, RuntimePercent', () => {
  const rt = new EnvoyRuntime([{ name: 'admin', kind: 'admin' }]);
  const f = rt.fraction('f', { numerator: 5, denominator: 10_000 });
  assert.deepEqual([f.numerator, f.denominator, f.overridden], [5, 10_000, false]);
  rt.modify([['f', '30']]);
  assert.deepEqual([f.numerator, f.denominator, f.overridden], [30, 100, true], 'a whole number is a percentage');
  rt.modify([['f', '250']]);
  assert.equal(f.numerator / f.denominator, 1, 'above 100: always');
  rt.modify([['f', 'not a number']]);
  assert.deepEqual([f.numerator, f.denominator], [5, 10_000]);
  const u = rt.uint('u', 10, 0xffff_ffff);
  rt.modify([['u', String(2 ** 33)]]);
  assert.equal(u.value, 10, 'RuntimeUInt32: above 2^32-1 keeps the default');
  const b = rt.bool('b', false);
  rt.modify([['b', 'True']]);
  assert.equal(b.value, true);
  const p = rt.double('p', 12.5, true);
  rt.modify([['p', '150']]);
  assert.equal(p.value, 12.5, 'RuntimePercent: out of [0, 100] keeps the default');
  rt.modify([['p', '99.5']]);
  assert.equal(p.value, 99.5);
  assert.equal(rt.fraction('f', { numerator: 5, denominator: 10_000 }), f, 'one handle per key and default');
});

function layered(raw: unknown): { layers: RuntimeLayerConfig[]; issues: Issues } {
  const issues = new Issues();
  return { layers: readLayeredRuntime(new Reader(raw, 'layered_runtime', issues)), issues };
}

test('layered_runtime: an rtds_layer over ADS or from a file; an api_config_source and a second admin layer are errors; static keys of Envoy features rig lacks are named', () => {
  const rtds = layered({ layers: [{ name: 'rtds', rtds_layer: { name: 'r', rtds_config: { ads: {}, initial_fetch_timeout: '2s' } } }] });
  assert.deepEqual(rtds.issues.errors, []);
  assert.deepEqual(rtds.layers, [{ name: 'rtds', kind: 'rtds', resource: 'r', initialFetchTimeoutMs: 2000 }]);
  const file = layered({ layers: [{ name: 'rtds', rtds_layer: { name: 'r', rtds_config: { path_config_source: { path: '/etc/rtds/rtds.yaml' } } } }] });
  assert.deepEqual(file.issues.errors, []);
  assert.deepEqual(file.layers, [{ name: 'rtds', kind: 'rtds', resource: 'r', initialFetchTimeoutMs: 15_000, file: { path: '/etc/rtds/rtds.yaml', dir: '/etc/rtds' } }]);
  const api = layered({ layers: [{ name: 'rtds', rtds_layer: { name: 'r', rtds_config: { api_config_source: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'x' } }] } } } }] });
  assert.match(api.issues.errors.join('\n'), /layered_runtime\.layers\[0\]\.rtds_layer\.rtds_config: rig proxy fetches an rtds_layer over the ADS stream \(rtds_config: \{ ads: \{\} \}, with dynamic_resources\.ads_config\) or from a file/);
  assert.match(api.issues.errors.join('\n'), /rtds_config\.api_config_source: api_config_source is not supported for an rtds_layer/);
  assert.throws(() => parseBootstrap({ layered_runtime: { layers: [{ name: 'rtds', rtds_layer: { name: 'r', rtds_config: { ads: {} } } }] } }, 'b.yaml'), /layered_runtime: an rtds_layer is fetched over ADS: the bootstrap needs dynamic_resources\.ads_config/);
  const admins = layered({ layers: [{ name: 'a', admin_layer: {} }, { name: 'b', admin_layer: {} }] });
  assert.match(admins.issues.errors.join('\n'), /too many admin layers/);
  const s = layered({ layers: [{ name: 's', static_layer: { fault: { http: { abort: { abort_percent: 10 } } }, my_key: 1, envoy: { reloadable_features: { x: true } }, overload: { global_downstream_max_connections: 10 } } }] });
  assert.deepEqual(s.issues.errors, []);
  assert.deepEqual(s.issues.warnings, ['layered_runtime.layers[0].static_layer: these keys switch Envoy features rig proxy does not have, and have no effect: envoy.reloadable_features.x']);
  const none = readLayeredRuntime(undefined);
  assert.deepEqual(none.map((l) => [l.name, l.kind]), [['base', 'static'], ['admin', 'admin']], "Envoy's default layers");
});

test('the bootstrap\'s deprecated runtime field is refused, as Envoy v3 does', () => {
  assert.throws(() => parseBootstrap({ runtime: { symlink_root: '/srv/runtime/current' } }, 'b.yaml'), /b\.yaml: invalid Envoy bootstrap:\n {2}runtime: /);
  const b = parseBootstrap({ layered_runtime: { layers: [{ name: 'admin', admin_layer: {} }] } }, 'b.yaml');
  assert.deepEqual(b.runtimeLayers, [{ name: 'admin', kind: 'admin' }]);
});
