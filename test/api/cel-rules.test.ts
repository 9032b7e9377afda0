// Istio's CEL rules (the CRDs' x-kubernetes-validations) are all enforced.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ISTIO_SCHEMAS } from '../../src/api/schema/istio-schemas.gen.ts';
import { uncompilableRules } from '../../src/api/validation/cel-rules.ts';
import { loadDocuments } from '../../src/api/index.ts';

test('every CEL rule of every Istio kind compiles (none is silently skipped)', () => {
  for (const [kind, entry] of Object.entries(ISTIO_SCHEMAS)) assert.deepEqual(uncompilableRules(entry.schemas), [], kind);
});

test('a CEL rule that no hand-written rule covers is enforced, and a semantic message is not doubled by its CEL twin', () => {
  const uds = loadDocuments('apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\nspec: {address: "unix:///run/x/"}\n', 'we.yaml');
  assert.deepEqual(uds.diagnostics.map((d) => [d.path, d.message]), [['spec.address', 'UDS may not be a dir']]);
  const both = loadDocuments(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  jwtRules:
  - {issuer: a, jwks: '{"keys": []}', jwksUri: https://example.com/jwks.json}
`, 'ra.yaml');
  assert.deepEqual(both.diagnostics.map((d) => d.message), ['jwks and jwksUri cannot both be set']);
});
