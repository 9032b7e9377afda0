// A fresh directory under the OS temp dir for one test, removed when the test ends (also when it fails).
// The test's after hooks run in the order they were added, so a process or timer the test started
// after making the directory may still write into it while it is removed: rmSync then retries
// (ENOTEMPTY) rather than failing a test that passed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function tempDir(t: { after(fn: () => unknown): void }, prefix = 'rig-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
  return dir;
}
