// Which iptables implementation programs the kernel: iptables-nft (nf_tables) or
// iptables-legacy (x_tables). Rules must go where the rest of the system's rules are, so
// detection prefers the backend that already holds rules, as Istio's init does.
import { execFile } from 'node:child_process';
import { RigError } from '../core/errors.ts';
import type { Family } from './iptables-rules.ts';

export type BackendName = 'nft' | 'legacy';
export const BACKEND_NAMES: readonly BackendName[] = ['nft', 'legacy'];

export interface Backend {
  name: BackendName;
  save(family: Family): Promise<string>;
  restore(family: Family, text: string): Promise<void>;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(file: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'string') return reject(err);
      resolve({ code: err ? (typeof code === 'number' ? code : 1) : 0, stdout, stderr });
    });
    // A tool that exits early closes its stdin: that is reported through its exit status.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

function binary(name: BackendName, family: Family, tool: 'save' | 'restore'): string {
  return `${family === 4 ? 'iptables' : 'ip6tables'}-${name}-${tool}`;
}

function missing(bin: string, err: unknown): RigError {
  return new RigError(
    'MESH_ERR_UNAVAILABLE',
    `cannot run ${bin}: ${(err as Error).message}. Install iptables (Debian: apt-get install iptables), or choose the other backend with --iptables-backend`,
  );
}

/** Runs the tool in the current network namespace, or in a named one (`ip netns exec NAME`). */
function inNetns(netns: string | undefined, bin: string, args: string[], input?: string): Promise<RunResult> {
  return netns ? run('ip', ['netns', 'exec', netns, bin, ...args], input) : run(bin, args, input);
}

export function backend(name: BackendName, netns?: string): Backend {
  return {
    name,
    async save(family) {
      const bin = binary(name, family, 'save');
      const r = await inNetns(netns, bin, []).catch((err: unknown) => {
        throw missing(bin, err);
      });
      if (r.code !== 0) throw new RigError('MESH_ERR_UNAVAILABLE', `${bin} failed (exit ${r.code}): ${r.stderr.trim()}`);
      return r.stdout;
    },
    async restore(family, text) {
      const bin = binary(name, family, 'restore');
      const r = await inNetns(netns, bin, ['--noflush', '--wait'], text).catch((err: unknown) => {
        throw missing(bin, err);
      });
      if (r.code !== 0) {
        const hint = r.stderr.includes('Permission denied') || r.stderr.includes('Operation not permitted') ? ' (iptables needs root / CAP_NET_ADMIN)' : '';
        throw new RigError('MESH_ERR_UNAVAILABLE', `${bin} rejected the rules (exit ${r.code})${hint}: ${r.stderr.trim()}\nrules were:\n${text}`);
      }
    },
  };
}

function ruleCount(saved: string): number {
  return saved.split('\n').filter((l) => l.startsWith('-A ')).length;
}

/**
 * The backend holding the most rules in this network namespace; on a tie (e.g. a fresh
 * namespace), the one the system's `iptables` command uses, else nft.
 */
export async function detectBackend(netns?: string): Promise<Backend> {
  const counts = await Promise.all(
    BACKEND_NAMES.map(async (n) => {
      try {
        return ruleCount(await backend(n, netns).save(4));
      } catch {
        return -1;
      }
    }),
  );
  const [nft, legacy] = counts as [number, number];
  if (nft < 0 && legacy < 0) throw new RigError('MESH_ERR_UNAVAILABLE', 'neither iptables-nft-save nor iptables-legacy-save works here: install iptables (Debian: apt-get install iptables) and run as root');
  if (legacy > nft) return backend('legacy', netns);
  if (nft > legacy) return backend('nft', netns);
  const v = await run('iptables', ['--version']).catch(() => undefined);
  return backend(v?.stdout.includes('legacy') ? 'legacy' : 'nft', netns);
}
