// The ProxyConfig a local sidecar starts with, merged as istiod's EffectiveProxyConfig: MeshConfig
// defaultConfig < mesh-wide ProxyConfig (root namespace) < namespace-wide < the proxy.istio.io/config
// annotation < the workload's ProxyConfig (selector); the oldest ProxyConfig of each level counts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../../src/api/index.ts';
import { effectiveProxyConfig, proxyConfigEnv } from '../../src/local/effective-proxy-config.ts';

function pc(namespace: string, name: string, spec: Record<string, unknown>, created = '2026-01-01T00:00:00Z'): Resource {
  return { apiVersion: 'networking.istio.io/v1beta1', kind: 'ProxyConfig', metadata: { namespace, name, creationTimestamp: created }, spec };
}

const mesh = { rootNamespace: 'istio-system', defaultConfig: { proxyMetadata: { A: 'mesh', B: 'mesh', C: 'mesh', D: 'mesh', E: 'mesh' }, concurrency: 2 } };
const ratings = { namespace: 'default', labels: { app: 'ratings', version: 'v1' } };

test('each level overrides the one below, variable by variable: mesh < namespace < annotation < workload', () => {
  const resources = [
    pc('istio-system', 'mesh-wide', { environmentVariables: { B: 'root', C: 'root', D: 'root', E: 'root' }, concurrency: 4 }),
    pc('default', 'namespace-wide', { environmentVariables: { C: 'namespace', D: 'namespace', E: 'namespace' } }),
    pc('default', 'ratings', { selector: { matchLabels: { app: 'ratings' } }, environmentVariables: { E: 'workload' }, concurrency: 1 }),
  ];
  const got = effectiveProxyConfig(resources, { ...ratings, annotation: { proxyMetadata: { D: 'annotation', E: 'annotation' }, concurrency: 3 } }, mesh);
  assert.deepEqual(got.environmentVariables, { A: 'mesh', B: 'root', C: 'namespace', D: 'annotation', E: 'workload' });
  assert.equal(got.concurrency, 1);
  assert.equal(got.concurrencyFrom, 'ProxyConfig default/ratings');
  assert.deepEqual(got.applied, ['ProxyConfig istio-system/mesh-wide', 'ProxyConfig default/namespace-wide', 'ProxyConfig default/ratings']);
  const noWorkload = effectiveProxyConfig(resources.slice(0, 2), { ...ratings, annotation: { proxyMetadata: {}, concurrency: 3 } }, mesh);
  assert.deepEqual({ c: noWorkload.concurrency, from: noWorkload.concurrencyFrom }, { c: 3, from: 'annotation proxy.istio.io/config' });
  // A level that does not set concurrency keeps the one below.
  const noAnnotation = effectiveProxyConfig(resources.slice(0, 2), ratings, mesh);
  assert.deepEqual({ c: noAnnotation.concurrency, from: noAnnotation.concurrencyFrom }, { c: 4, from: 'ProxyConfig istio-system/mesh-wide' });
});

test('what matches: selectors in the workload namespace only, the oldest per level, no empty selector', () => {
  const resources = [
    pc('default', 'newer-ns', { environmentVariables: { X: 'newer' } }, '2026-02-01T00:00:00Z'),
    pc('default', 'older-ns', { environmentVariables: { X: 'older' } }, '2026-01-01T00:00:00Z'),
    pc('default', 'other-app', { selector: { matchLabels: { app: 'reviews' } }, environmentVariables: { Y: 'reviews' } }),
    pc('default', 'empty-selector', { selector: {}, environmentVariables: { Z: 'empty' } }),
    pc('other', 'ratings-elsewhere', { selector: { matchLabels: { app: 'ratings' } }, environmentVariables: { Y: 'other-namespace' } }),
    pc('istio-system', 'root-selector', { selector: { matchLabels: { app: 'ratings' } }, environmentVariables: { Y: 'root-selector' } }),
  ];
  assert.deepEqual(effectiveProxyConfig(resources, ratings, { rootNamespace: 'istio-system' }).environmentVariables, { X: 'older' });
  // In the root namespace the mesh-wide ProxyConfig is also the namespace's.
  const gateway = effectiveProxyConfig([pc('istio-system', 'mesh-wide', { environmentVariables: { G: '1' } })], { namespace: 'istio-system', labels: { istio: 'ingressgateway' } }, { rootNamespace: 'istio-system' });
  assert.deepEqual(gateway, { environmentVariables: { G: '1' }, applied: ['ProxyConfig istio-system/mesh-wide'] });
});

test('the environment of the proxy: names a pod may not have are left out, concurrency other than 1 is said once', () => {
  const notices: string[] = [];
  const seen = new Set<string>();
  const once = (key: string, line: string) => {
    if (!seen.has(key)) notices.push(line);
    seen.add(key);
  };
  const eff = effectiveProxyConfig([pc('default', 'ns', { environmentVariables: { ISTIO_META_FOO: 'bar', '1BAD': 'x' }, concurrency: 0 })], ratings, { rootNamespace: 'istio-system' });
  assert.deepEqual(proxyConfigEnv(eff, 'ratings-0', once), { ISTIO_META_FOO: 'bar' });
  proxyConfigEnv(eff, 'ratings-1', once);
  assert.deepEqual(notices, [
    'ratings-0: ProxyConfig environment variable "1BAD" is left out: not a name Kubernetes accepts (letters, digits, _ - ., no leading digit)',
    'ratings-0: concurrency 0 (ProxyConfig default/ns) is not applied: rig proxy runs one event loop (one worker thread)',
  ]);
});
