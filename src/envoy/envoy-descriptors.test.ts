// proto/envoy-descriptors.json is what rig loads its Envoy types from; it must be what the .proto
// files compile to today.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { compileEnvoyDescriptors } from './proto-sources.ts';

test('proto/envoy-descriptors.json is up to date with the .proto files (else: node scripts/generate-envoy-descriptors.ts)', () => {
  const committed: unknown = JSON.parse(readFileSync(new URL('../../proto/envoy-descriptors.json', import.meta.url), 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(compileEnvoyDescriptors())));
});
