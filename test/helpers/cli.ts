// Runs the `rig` CLI from source (Node 24 strips the types), so tests never need a build.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const RIG_MAIN = path.join(REPO_ROOT, 'src/cli/main.ts');

export interface RigResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `rig ...args` to completion and returns its exit code and output (never throws on exit code). */
export function runRig(args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RigResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [RIG_MAIN, ...args],
      { cwd: opts.cwd ?? REPO_ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        // err.code is the exit status when the process ran, a string (ENOENT…) when it could not start.
        const code = (err as { code?: unknown } | null)?.code;
        if (typeof code === 'string') return reject(err);
        resolve({ code: err ? (typeof code === 'number' ? code : 1) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Starts a long-running `rig ...args` process (the caller stops it; see stopProcess). */
export function spawnRig(args: string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [RIG_MAIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Sends SIGTERM, then SIGKILL after `graceMs`, and resolves when the process has exited. */
export function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
