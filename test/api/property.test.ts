// Loading and validation never throw, whatever the input: they return diagnostics.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { KINDS, apiVersionsOf, loadDocuments, validateResource } from '../../src/api/index.ts';
import type { Resource } from '../../src/api/index.ts';

test('arbitrary text never makes the loader throw', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
      const r = loadDocuments(text, 'fuzz.yaml');
      assert.ok(Array.isArray(r.resources) && Array.isArray(r.diagnostics));
    }),
    { numRuns: 500 },
  );
});

test('YAML-looking noise (indentation, anchors, flow, tags) never makes the loader throw', () => {
  const token = fc.constantFrom('a', ':', ' ', '\n', '- ', '  ', '{', '}', '[', ']', ',', '&x ', '*x', '!!str ', '---\n', '"', "'", '#', 'kind: VirtualService\n', 'apiVersion: networking.istio.io/v1\n', 'spec:\n', 'metadata: {name: x}\n', '<<: *x\n', '? ');
  fc.assert(
    fc.property(fc.array(token, { maxLength: 60 }), (parts) => {
      loadDocuments(parts.join(''), 'noise.yaml');
    }),
    { numRuns: 1000 },
  );
});

test('arbitrary specs for every kind never make validation throw', () => {
  const value = fc.letrec((tie) => ({
    any: fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 8 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(tie('any'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('hosts', 'http', 'route', 'destination', 'host', 'weight', 'match', 'uri', 'subsets', 'name', 'servers', 'port', 'rules', 'from', 'to', 'when', 'selector', 'ports', 'command', 'x'), tie('any'), { maxKeys: 4 })),
  })).any;
  fc.assert(
    fc.property(fc.constantFrom(...KINDS), value, (kind, spec) => {
      const resource: Resource = { apiVersion: apiVersionsOf(kind)[0], kind, metadata: { name: 'fuzz', namespace: 'default' }, spec: spec as Record<string, unknown> };
      const diagnostics = validateResource(resource, { spec });
      assert.ok(diagnostics.every((d) => !d.message.startsWith('internal validation error')), JSON.stringify(diagnostics));
      loadDocuments(stringify({ apiVersion: resource.apiVersion, kind, metadata: { name: 'fuzz' }, spec }), 'fuzz.yaml');
    }),
    { numRuns: 1500 },
  );
});
