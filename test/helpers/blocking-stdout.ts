// Preloaded into the test runner and every test file's process (package.json, test:unit). A test
// file's process reports to the runner over a pipe, and --test-force-exit's process.exit() dropped
// what was still buffered in it: tests that ran went unreported, a failure's name included, and
// the passing ones at exit 0 (nodejs/node#64833; here 1392 of 1396 tests reported in one run, and
// 2 of 12 runs of test/api and test/bench short). With blocking writes nothing is left buffered.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const stdout = process.stdout as unknown as { _handle?: { setBlocking?: (blocking: boolean) => unknown } };
stdout._handle?.setBlocking?.(true);

// Processes the tests start with process.execArgv (rig up's proxies) are not test files: they
// neither need this nor could find it from another working directory.
const self = fileURLToPath(import.meta.url);
const isSelf = (spec: string | undefined) => spec !== undefined && path.resolve(spec) === self;
const kept: string[] = [];
for (let i = 0; i < process.execArgv.length; i++) {
  const a = process.execArgv[i];
  if (a.startsWith('--import=') && isSelf(a.slice('--import='.length))) continue;
  if (a === '--import' && isSelf(process.execArgv[i + 1])) {
    i++;
    continue;
  }
  kept.push(a);
}
process.execArgv = kept;
