// ProxyConfig (networking.istio.io/v1beta1) validation: what Istio accepts validates; what rig up
// cannot apply is a warning naming the field (concurrency other than 1, image, an environment
// variable name a pod may not have), and so is an empty selector, which Istio applies to nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyze } from '../../src/api/index.ts';
import { loadDocuments } from '../../src/api/loader.ts';

const proxyConfig = (name: string, spec: string) => `---
apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: { name: ${name}, namespace: default }
spec: ${spec}
`;

function messages(yaml: string): string[] {
  return loadDocuments(yaml, 'pc.yaml').diagnostics.map((d) => `${d.severity} ${d.path}: ${d.message.split(':')[0]}`);
}

test('a ProxyConfig with environmentVariables, a selector and concurrency 1 validates without a word', () => {
  const { resources, diagnostics } = loadDocuments(proxyConfig('ok', `{ selector: { matchLabels: { app: ratings } }, concurrency: 1, environmentVariables: { ISTIO_META_FOO: bar, TZ: UTC } }`), 'pc.yaml');
  assert.deepEqual(diagnostics, []);
  assert.equal(resources[0].kind, 'ProxyConfig');
  assert.equal(resources[0].apiVersion, 'networking.istio.io/v1beta1');
});

test('what rig cannot apply is a warning with its field path', () => {
  assert.deepEqual(messages(proxyConfig('threads', '{ concurrency: 0 }')), ['Warning spec.concurrency: rig proxy runs on one event loop (one worker thread, as Envoy with concurrency 1)']);
  assert.deepEqual(messages(proxyConfig('image', '{ image: { imageType: distroless } }')), ['Warning spec.image: image has no effect']);
  assert.deepEqual(messages(proxyConfig('env', `{ environmentVariables: { '1ST': x } }`)), ['Warning spec.environmentVariables["1ST"]: "1ST" is not an environment variable name Kubernetes accepts']);
  assert.deepEqual(messages(proxyConfig('empty', '{ selector: {} }')), ['Warning spec.selector: a selector without matchLabels selects no workload (Istio applies it neither to the namespace nor to any workload)']);
});

test('only networking.istio.io/v1beta1 serves ProxyConfig', () => {
  const { resources, diagnostics } = loadDocuments(proxyConfig('v1', '{}').replace('v1beta1', 'v1'), 'pc.yaml');
  assert.equal(resources.length, 0);
  assert.match(diagnostics.map((d) => `${d.message} ${d.hint}`).join('\n'), /not served as networking.istio.io\/v1 .*v1beta1/);
});

test('rig analyze: IST0127 for a ProxyConfig selector no workload of its own namespace has (in the root namespace too: it is not mesh-wide)', () => {
  const workload = (ns: string, app: string) => `---
apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: ${app}, namespace: ${ns}, labels: { app: ${app} } }
spec: { command: [node, app.js], ports: [{ name: http, port: 9080 }] }
`;
  const { resources } = loadDocuments(
    workload('default', 'ratings') + workload('istio-system', 'probe') +
      proxyConfig('ratings', '{ selector: { matchLabels: { app: ratings } } }') +
      proxyConfig('typo', '{ selector: { matchLabels: { app: ratngs } } }') +
      proxyConfig('root', '{ selector: { matchLabels: { app: ratings } } }').replace('namespace: default', 'namespace: istio-system'),
    'pc.yaml',
  );
  const found = analyze(resources).filter((d) => d.code === 'IST0127').map((d) => d.resource);
  assert.deepEqual(found.sort(), ['ProxyConfig default/typo', 'ProxyConfig istio-system/root']);
});
