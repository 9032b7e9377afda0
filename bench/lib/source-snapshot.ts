// Which Rigging the benchmark runs: the committed HEAD (default), exported to a temporary
// directory, so that the figures belong to the commit named in the result file and not to
// whatever other work is half-done in the shared working tree; or the working tree itself.
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { scratchDir } from '../servers/server.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

/** A copy of HEAD's sources, compiled (with the installed node_modules and native build linked in); returns its root. */
export function snapshotHead(): string {
  const dir = scratchDir('src-head');
  const tar = execFileSync('git', ['archive', '--format=tar', 'HEAD', 'src', 'proto', 'package.json', 'tsconfig.json', 'tsconfig.build.json'], { cwd: REPO_ROOT, maxBuffer: 1 << 30 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  // Users run the compiled build (bin/rig.js → dist/); type stripping from source costs ~18 MB RSS.
  execFileSync(path.join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  if (existsSync(path.join(REPO_ROOT, 'native/build'))) {
    execFileSync('mkdir', ['-p', path.join(dir, 'native')]);
    symlinkSync(path.join(REPO_ROOT, 'native/build'), path.join(dir, 'native/build'));
  }
  return dir;
}
