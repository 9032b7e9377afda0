import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RigError } from '../core/errors.ts';
import { DEFAULT_MESH_CONFIG, loadMeshConfig, parseMeshConfig } from './mesh-config.ts';

test('defaults are Istio’s', () => {
  const m = parseMeshConfig(undefined);
  assert.equal(m.rootNamespace, 'istio-system');
  assert.equal(m.trustDomain, 'cluster.local');
  assert.equal(m.outboundTrafficPolicy.mode, 'ALLOW_ANY');
  assert.equal(m.enableAutoMtls, true);
  assert.deepEqual(m, DEFAULT_MESH_CONFIG);
});

test('every problem is reported with its field path', () => {
  assert.throws(
    () => parseMeshConfig({ trustDomian: 'x', outboundTrafficPolicy: { mode: 'DENY' }, enableTracing: 'yes', defaultConfig: { proxyMetdata: {} }, connectTimeout: 'ten' }),
    (err: unknown) => {
      assert.ok(err instanceof RigError);
      assert.equal(err.code, 'MESH_ERR_INVALID_CONFIG');
      for (const p of ['trustDomian: unknown field', 'outboundTrafficPolicy.mode: must be ALLOW_ANY or REGISTRY_ONLY', 'enableTracing: expected boolean', 'defaultConfig.proxyMetdata: unknown field', 'connectTimeout: invalid duration']) assert.ok(err.message.includes(p), `missing "${p}" in ${err.message}`);
      return true;
    },
  );
});

test('dnsRefreshRate: Istio’s default 60s; a bad duration, or one Envoy refuses (1ms or less), is an error naming the field', () => {
  assert.equal(parseMeshConfig(undefined).dnsRefreshRate, '60s');
  assert.equal(parseMeshConfig({ dnsRefreshRate: '300s' }).dnsRefreshRate, '300s');
  for (const [value, message] of [
    ['soon', 'dnsRefreshRate: invalid duration "soon"'],
    [30, 'dnsRefreshRate: expected string, got 30'],
    ['1ms', 'dnsRefreshRate: must be greater than 1ms, got "1ms"'],
  ] as const) {
    assert.throws(() => parseMeshConfig({ dnsRefreshRate: value }), (err: unknown) => err instanceof RigError && err.message.includes(message), String(value));
  }
});

test('a file may wrap the config in meshConfig: (IstioOperator / ConfigMap style)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-mesh-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(file, 'meshConfig:\n  trustDomain: example.org\n  outboundTrafficPolicy: { mode: REGISTRY_ONLY }\n');
  const m = await loadMeshConfig(file);
  assert.equal(m.trustDomain, 'example.org');
  assert.equal(m.outboundTrafficPolicy.mode, 'REGISTRY_ONLY');
  assert.equal(m.rootNamespace, 'istio-system');
  await assert.rejects(loadMeshConfig(path.join(dir, 'missing.yaml')), /cannot read mesh config/);
});
