// WasmPlugin validation now that rig proxy fetches remote modules as Istio's agent does: remote urls
// (oci://, a scheme-less reference, http(s)://) with imagePullPolicy and imagePullSecret validate
// without a word; what still has no effect is named (a pull secret for a non-OCI url, a pull policy
// or a sha256 for a local file).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadDocuments } from '../../src/api/loader.ts';

const plugin = (name: string, spec: string) => `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: ${name}, namespace: default }
spec: ${spec}
`;

function messages(yaml: string): string[] {
  return loadDocuments(yaml, 'plugins.yaml').diagnostics.map((d) => `${d.severity} ${d.path}: ${d.message}`);
}

test('remote WasmPlugin urls with a pull policy and secret (and failStrategy FAIL_RELOAD, which rig proxy honours) validate without warnings; settings without effect are named', () => {
  assert.deepEqual(
    messages(
      plugin('oci', `{ url: 'oci://ghcr.io/acme/auth:1.0', imagePullPolicy: Always, imagePullSecret: regcred, sha256: '${'ab'.repeat(32)}' }`) +
        plugin('bare', `{ url: 'ghcr.io/acme/auth:latest', imagePullSecret: regcred, failStrategy: FAIL_RELOAD }`) +
        plugin('https', `{ url: 'https://plugins.example.com/auth.wasm', imagePullPolicy: IfNotPresent, failStrategy: FAIL_OPEN }`),
    ),
    [],
  );
  assert.deepEqual(messages(plugin('http-secret', `{ url: 'http://plugins.example.com/auth.wasm', imagePullSecret: regcred }`)), ['Warning spec.imagePullSecret: imagePullSecret is used only to pull oci:// images']);
  assert.deepEqual(messages(plugin('file-policy', `{ url: 'file:///opt/auth.wasm', imagePullPolicy: Always }`)), ['Warning spec.imagePullPolicy: imagePullPolicy has no effect on a local file']);
  // Istio's API keeps verificationKey hidden and unimplemented: no signature is verified there either.
  assert.deepEqual(messages(plugin('signed', `{ url: 'oci://ghcr.io/acme/auth:1.0', verificationKey: 'key' }`)), [
    'Warning spec.verificationKey: verificationKey is not supported by Rigging and has no effect (not implemented by Istio either): no signature is verified',
  ]);
});
