// Every process the benchmark starts, pinned to a core with taskset, so that all of them are
// stopped at the end of a case and also when the run fails or is interrupted (Ctrl-C).
import os from 'node:os';
import { writeFileSync } from 'node:fs';
import { processTree } from './proc-stats.ts';
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';

export interface Managed {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Everything the process wrote to stderr/stdout (capped), for error messages. */
  output(): string;
  /** Resolves with a description when the process exits. */
  exited: Promise<string>;
}

export interface StartOptions {
  name: string;
  core: number;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdio?: StdioOptions;
  /** A server under test (default), the open-loop generator or a saturating load tool; see configureScheduling. */
  kind?: 'server' | 'generator' | 'load';
}

const live = new Set<ChildProcess>();
let scheduling = { serversFifo: false, niceness: 0 };

/**
 * How the benchmark's processes compete with the rest of the machine. The servers under test and
 * the open-loop generator may run SCHED_FIFO: they sleep in epoll and, when woken, run at once
 * instead of queueing behind other work on their core. Saturating tools (wrk, h2load) keep the
 * CPU busy, so they get a niceness instead (a busy real-time task would starve the core).
 */
export function configureScheduling(s: { serversFifo: boolean; niceness: number }): void {
  scheduling = s;
}

/**
 * Node flags for a Node process that runs SCHED_FIFO: V8's parallel GC threads spin-wait for
 * each other, and same-priority real-time threads on one core never preempt one another, so a
 * major GC livelocks (seen: the generator stuck at 100% of its core). On one core the GC helper
 * threads buy nothing anyway; marking then runs incrementally on the main thread.
 */
export function realtimeNodeFlags(): string[] {
  return scheduling.serversFifo ? ['--single-threaded-gc'] : [];
}

function killTree(pid: number): void {
  // Children first is not needed for SIGKILL; the whole tree, since nginx's worker outlives a killed master.
  for (const p of processTree(pid)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
let hooked = false;

function killAllSync(): void {
  for (const c of live) killTree(c.pid!);
  live.clear();
  // And whatever else descends from us (the control plane benchmark forks its own processes).
  for (const pid of processTree(process.pid).slice(1)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}: stopping the servers it started\n`);
      killAllSync();
      process.exit(130);
    });
  }
}

/** Starts `command args` pinned to one core (chrt/nice and taskset exec it, so the pid is the command's). */
export function startPinned(opts: StartOptions): Managed {
  hookExit();
  const pinned = ['taskset', '-c', String(opts.core), opts.command, ...opts.args];
  const realtime = (opts.kind ?? 'server') !== 'load' && scheduling.serversFifo;
  const niced = !realtime && scheduling.niceness !== 0;
  const argv = realtime ? ['chrt', '-f', '1', ...pinned] : niced ? ['nice', '-n', String(scheduling.niceness), ...pinned] : pinned;
  const child = spawn(argv[0], argv.slice(1), {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
    // With autogroup scheduling (Linux's default), niceness only counts within a session: a new
    // session gets its own group, whose niceness we set so that it counts against other sessions.
    detached: niced,
  });
  if (child.pid === undefined) throw new Error(`could not start ${opts.name} (${opts.command})`);
  if (niced) {
    try {
      writeFileSync(`/proc/${child.pid}/autogroup`, String(scheduling.niceness));
    } catch {
      // no autogroup scheduling, or not permitted: the process niceness still applies
    }
  }
  live.add(child);
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<string>((resolve) => {
    child.once('close', (code, signal) => {
      live.delete(child);
      resolve(`${opts.name} exited (${signal ?? `code ${code}`})`);
    });
    child.once('error', (err) => {
      live.delete(child);
      resolve(`${opts.name} could not run: ${err.message}`);
    });
  });
  return { name: opts.name, child, pid: child.pid, output: () => out, exited };
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
export async function stop(m: Managed, graceMs = 3000): Promise<void> {
  if (m.child.exitCode !== null || m.child.signalCode !== null) return;
  const timer = setTimeout(() => killTree(m.pid), graceMs);
  m.child.kill('SIGTERM');
  await m.exited;
  clearTimeout(timer);
}

/** Pins the calling process (all its threads) to a core, with the niceness set for the run. */
export function pinSelf(core: number): void {
  spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
  if (scheduling.niceness !== 0) os.setPriority(scheduling.niceness);
}

/**
 * Lets the calling process (and what it starts from now on) run on every core again: the control
 * plane's scale benchmark forks its control plane and load generators, which inherit the
 * orchestrator's affinity and would otherwise all share the load core.
 */
export function unpinSelf(): void {
  spawnSync('taskset', ['-a', '-p', '-c', `0-${os.cpus().length - 1}`, String(process.pid)], { stdio: 'ignore' });
}
