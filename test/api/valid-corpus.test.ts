// Real Istio configurations (from Istio's reference pages) that must validate without errors:
// the guard against rules stricter than Istio's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic, loadPaths } from '../../src/api/index.ts';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'valid');

test('the valid corpus and the examples validate without errors', async () => {
  for (const path of [dir, join(dir, '../../../examples')]) {
    const { resources, diagnostics, files } = await loadPaths([path], { duplicates: 'keep' });
    const errors = diagnostics.filter((d) => d.severity === 'Error');
    assert.deepEqual(errors.map(formatDiagnostic), [], path);
    assert.ok(files && files.length > 0 && resources.length >= files.length, `${path}: every file has resources`);
  }
});
