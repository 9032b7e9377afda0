// Every document in test/api/invalid/ fails with the errors its header announces, at the
// announced line:column: `# expect: LINE:COL message part` (and `# expect-hint: hint part`).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic, loadDocuments } from '../../src/api/index.ts';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'invalid');

for (const name of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
  test(`invalid/${name}`, () => {
    const text = readFileSync(join(dir, name), 'utf8');
    const expected = [...text.matchAll(/^# expect: (\d+):(\d+) (.+)$/gm)].map((m) => ({ line: Number(m[1]), column: Number(m[2]), message: m[3] }));
    const hints = [...text.matchAll(/^# expect-hint: (.+)$/gm)].map((m) => m[1]);
    assert.ok(expected.length > 0, 'the file announces its errors');
    const { resources, diagnostics } = loadDocuments(text, name);
    const errors = diagnostics.filter((d) => d.severity === 'Error');
    const shown = errors.map(formatDiagnostic).join('\n');
    assert.equal(resources.length, 0, `the invalid resource is not accepted:\n${shown}`);
    assert.equal(errors.length, expected.length, `exactly the announced errors:\n${shown}`);
    for (const e of expected) {
      const found = errors.find((d) => d.message.includes(e.message));
      assert.ok(found, `an error containing "${e.message}" in:\n${shown}`);
      assert.deepEqual({ line: found.source?.line, column: found.source?.column }, { line: e.line, column: e.column }, `position of "${e.message}"`);
      assert.equal(found.source?.file, name);
      assert.ok(found.hint, 'every error says what to do');
    }
    for (const h of hints) assert.ok(errors.some((d) => d.hint?.includes(h)), `a hint containing "${h}" in:\n${shown}`);
  });
}
