// The benchmark's tools come from Debian's packages; install the missing ones (as root).
import { spawnSync } from 'node:child_process';

export const BENCH_PACKAGES = ['nginx', 'haproxy', 'wrk', 'nghttp2-client'];

function installed(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function aptGet(args: string[]): { ok: boolean; output: string } {
  const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

/** Installs whichever of the packages is missing; throws with what to do when it cannot. */
export function ensurePackages(packages = BENCH_PACKAGES, log: (s: string) => void = () => {}): void {
  const missing = packages.filter((p) => !installed(p));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`the benchmark needs the Debian packages ${missing.join(', ')}: run it as root, or install them first: sudo apt-get install -y ${missing.join(' ')}`);
  }
  log(`installing ${missing.join(', ')} with apt-get`);
  let r = aptGet(['install', '-y', '-qq', ...missing]);
  if (!r.ok) {
    aptGet(['update', '-qq']);
    r = aptGet(['install', '-y', '-qq', ...missing]);
  }
  if (!r.ok) throw new Error(`apt-get install -y ${missing.join(' ')} failed:\n${r.output.trim().split('\n').slice(-10).join('\n')}`);
}
