// Which Rigging the benchmark runs: the committed HEAD (default), exported to a temporary
// directory, so that the figures belong to the commit named in the result file and not to
// whatever other work is half-done in the shared working tree; or the working tree itself.
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { scratchDir } from '../servers/server.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

/** A copy of a commit's sources (HEAD by default), compiled (with the installed node_modules and native build linked in); returns its root. */
export function snapshotHead(rev = 'HEAD'): string {
  return snapshot('src-head', execFileSync('git', ['archive', '--format=tar', rev, ...SNAPSHOT_PATHS], { cwd: REPO_ROOT, maxBuffer: 1 << 30 }), true);
}

/**
 * The same from the working tree as it is now (uncommitted changes included), for --worktree-build.
 * Type errors in half-done work elsewhere do not stop it: tsc emits JavaScript regardless.
 */
export function snapshotWorktree(): string {
  return snapshot('src-worktree', execFileSync('tar', ['-c', '--exclude=*.test.ts', ...SNAPSHOT_PATHS], { cwd: REPO_ROOT, maxBuffer: 1 << 30 }), false);
}

const SNAPSHOT_PATHS = ['src', 'proto', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];

function snapshot(prefix: string, tar: Buffer, strict: boolean): string {
  const dir = scratchDir(prefix);
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  // Users run the compiled build (bin/rig.js → dist/); type stripping from source costs ~18 MB RSS.
  try {
    execFileSync(path.join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: strict ? 'inherit' : 'ignore' });
  } catch (err) {
    if (strict || !existsSync(path.join(dir, 'dist/cli/main.js'))) throw err;
  }
  if (existsSync(path.join(REPO_ROOT, 'native/build'))) {
    execFileSync('mkdir', ['-p', path.join(dir, 'native')]);
    symlinkSync(path.join(REPO_ROOT, 'native/build'), path.join(dir, 'native/build'));
  }
  return dir;
}
