// Running `ip` and processes inside network namespaces (Linux, root).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { RigError } from '../../core/errors.ts';
import { run, type RunResult } from '../../iptables/iptables-backend.ts';

export const EXPLICIT_MODE_HINT = 'run without --isolation netns: the explicit proxy mode (HTTP_PROXY, one loopback port per sidecar) needs no privileges';

/** Throws a clear error when network-namespace pods cannot work here (not Linux, not root, no iproute2). */
export async function requireNetnsSupport(): Promise<void> {
  if (process.platform !== 'linux') throw new RigError('MESH_ERR_PERMISSION', `network-namespace pods need Linux (this is ${process.platform}); ${EXPLICIT_MODE_HINT}`);
  if (process.getuid?.() !== 0) throw new RigError('MESH_ERR_PERMISSION', `network-namespace pods need root (creating namespaces, veths and iptables rules needs CAP_NET_ADMIN and CAP_SYS_ADMIN); ${EXPLICIT_MODE_HINT}`);
  const r = await run('ip', ['-V']).catch(() => undefined);
  if (!r || r.code !== 0) throw new RigError('MESH_ERR_UNAVAILABLE', `the \`ip\` command (iproute2) is missing: install it (Debian: apt-get install iproute2), or ${EXPLICIT_MODE_HINT}`);
}

/** Runs `ip ...args`; throws with the command and its stderr when it fails. */
export async function ip(args: string[], input?: string): Promise<string> {
  const r = await run('ip', args, input);
  if (r.code !== 0) throw new RigError('MESH_ERR_UNAVAILABLE', `ip ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Like ip() but never throws (for teardown, where the object may already be gone). */
export async function ipQuiet(args: string[]): Promise<RunResult> {
  return run('ip', args).catch((err: Error) => ({ code: 1, stdout: '', stderr: err.message }));
}

export interface InNetnsOptions {
  /** Run as this user and group (setpriv; supplementary groups cleared). */
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdio?: StdioOptions;
}

/**
 * The argv that runs `cmd` in the namespace (`ip netns exec` also bind-mounts
 * /etc/netns/NAME/resolv.conf over /etc/resolv.conf) as the given user.
 */
export function netnsArgv(netns: string, cmd: string, args: string[], opts: InNetnsOptions = {}): string[] {
  const argv = ['ip', 'netns', 'exec', netns];
  if (opts.uid !== undefined || opts.gid !== undefined) {
    const uid = opts.uid ?? 0;
    argv.push('setpriv', `--reuid=${uid}`, `--regid=${opts.gid ?? uid}`, '--clear-groups', '--');
  }
  return [...argv, cmd, ...args];
}

/** Starts a process inside the namespace; `ip netns exec` and setpriv exec, so its pid is the command's. */
export function spawnInNetns(netns: string, cmd: string, args: string[], opts: InNetnsOptions = {}): ChildProcess {
  const [file, ...rest] = netnsArgv(netns, cmd, args, opts);
  return spawn(file, rest, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command inside the namespace to completion. */
export function execInNetns(netns: string, cmd: string, args: string[], opts: InNetnsOptions & { input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnInNetns(netns, cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

/** Names of the existing network namespaces. */
export async function listNetns(): Promise<string[]> {
  const out = await ip(['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0].trim())
    .filter(Boolean);
}
