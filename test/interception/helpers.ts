// Shared helpers of the interception tests: root check, pod networks torn down after each test
// (also when it fails), processes started in pods, and the probe fixture.
import { execFileSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { cleanupNetnsLeftovers, createPodNetwork, type Pod, type PodNetwork } from '../../src/local/netns/index.ts';
import { listReservations } from '../../src/local/netns/netns-addresses.ts';

export const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'probe.ts');

/** Why these tests cannot run here, or undefined when they can (root on Linux with iproute2 and iptables). */
export function rootSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network-namespace tests need Linux';
  if (process.getuid?.() !== 0) return 'network-namespace tests need root (CI runs as root); run `sudo npm test` to include them';
  for (const bin of ['ip', 'iptables-nft-restore', 'setpriv']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return `${bin} is not installed (Debian packages iproute2, iptables, util-linux)`;
    }
  }
  return undefined;
}

/** A unique namespace prefix per test process, so concurrent runs never touch each other's pods. */
export function testPrefix(tag: string): string {
  return `rigt${process.pid.toString(36)}${tag}`;
}

/** Removes what test runs killed before their cleanup (CI timeout, SIGKILL) left behind. */
async function reapDeadTestRuns(): Promise<void> {
  for (const r of listReservations()) {
    let alive = true;
    try {
      process.kill(r.pid, 0);
    } catch {
      alive = false;
    }
    if (!alive && r.nsPrefix.startsWith('rigt')) await cleanupNetnsLeftovers({ nsPrefix: r.nsPrefix });
  }
}

export async function podNetwork(t: TestContext, tag: string): Promise<PodNetwork> {
  await reapDeadTestRuns();
  const net = await createPodNetwork({ nsPrefix: testPrefix(tag) });
  t.after(() => net.destroy());
  return net;
}

/** Resolves with the next stdout line of a child process. */
function lines(child: ChildProcess): AsyncIterator<string> {
  return readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
}

async function waitReady(child: ChildProcess, it: AsyncIterator<string>, what: string): Promise<void> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const first = await it.next();
  if (first.done || first.value !== 'ready') throw new Error(`${what} did not start: ${first.value ?? ''} ${stderr}`);
}

/** Starts `probe.ts listen PORTS` in a pod. */
export async function startProbeServer(t: TestContext, net: PodNetwork, pod: Pod, ports: number[], uid?: number): Promise<ChildProcess> {
  const child = net.spawnInPod(pod, process.execPath, [PROBE, 'listen', ports.join(',')], { uid });
  t.after(() => child.kill('SIGKILL'));
  await waitReady(child, lines(child), `probe server in ${pod.netns}`);
  return child;
}

export interface ConnectResult {
  ok: boolean;
  code?: string;
  /** The server's report when ok: the port it accepted on and the original destination. */
  reply?: { port: number; orig: { address: string; port: number } | null; remote: string };
}

export interface Agent {
  connect(host: string, port: number): Promise<ConnectResult>;
}

/** Starts a client agent in a pod (as `uid` when given) that makes connections on request. */
export async function startAgent(t: TestContext, net: PodNetwork, pod: Pod, uid?: number): Promise<Agent> {
  const child = net.spawnInPod(pod, process.execPath, [PROBE, 'agent'], { uid, stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const it = lines(child);
  await waitReady(child, it, `agent in ${pod.netns}`);
  let id = 0;
  const waiting = new Map<number, (r: ConnectResult) => void>();
  void (async () => {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const msg = JSON.parse(r.value) as { id: number; ok: boolean; data?: string; code?: string };
      waiting.get(msg.id)?.({ ok: msg.ok, code: msg.code, reply: msg.ok && msg.data ? JSON.parse(msg.data) : undefined });
      waiting.delete(msg.id);
    }
  })();
  return {
    connect(host, port) {
      const n = ++id;
      return new Promise((resolve) => {
        waiting.set(n, resolve);
        child.stdin!.write(JSON.stringify({ id: n, host, port }) + '\n');
      });
    },
  };
}

/** What a destroyed pod network may have left on the host: its namespaces, their /etc/netns
 *  directories, its interfaces, and capture rules in the host's own namespace. */
export function leftovers(prefix: string, bridge: string): string[] {
  const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
  const index = bridge.replace(/^rigb/, '');
  const netns = sh('ip netns list').split('\n').filter((l) => l.startsWith(prefix));
  const dirs = sh(`ls /etc/netns 2>/dev/null || true`).split('\n').filter((l) => l.startsWith(prefix));
  // Tests run concurrently: once released, this network's subnet index (and so its bridge and veth
  // names) may already belong to another test's network; only what is still ours counts.
  const owner = listReservations().find((r) => String(r.index) === index)?.nsPrefix;
  const reused = owner !== undefined && owner !== '' && owner !== prefix;
  const links = reused
    ? []
    : sh('ip -o link show')
        .split('\n')
        .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
        .filter((n) => n === bridge || n.startsWith(`rigv${index}p`));
  const rules = sh('(iptables-nft-save; iptables-legacy-save) 2>/dev/null || true').split('\n').filter((l) => l.includes('ISTIO_'));
  const reservation = owner !== undefined && !reused ? [`${index}.json`] : [];
  return [...netns.map((n) => `netns ${n}`), ...dirs.map((d) => `/etc/netns/${d}`), ...links.map((l) => `link ${l}`), ...rules.map((r) => `host rule ${r}`), ...reservation.map((r) => `reservation ${r}`)];
}
