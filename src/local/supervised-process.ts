// One supervised process, like a compose service: started in its own process group (so that
// stopping it also stops whatever it spawned), its output logged, probed for readiness, and
// restarted with exponential back-off when it exits. A command that cannot be started at all
// (not found, not executable) is reported and not retried: the config has to change first.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { forEachLine, LogFile } from './log-output.ts';
import { guardGroup, releaseGroup } from './orphan-guard.ts';
import type { Probe } from './probe.ts';
import type { ProcessState } from './status.ts';

export interface ProcessSpec {
  /** Name used in logs and messages. */
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
  /** Lines also printed on the terminal (all of them when absent). */
  echo?: (line: string) => boolean;
  print?: (line: string) => void;
  readiness?: Probe;
  /** Probe period once ready (while starting, probes run every 100 ms so start-up is quick). */
  periodMs?: number;
  failureThreshold?: number;
  /** Called before every (re)start; may change `args`/`env`. */
  beforeStart?: () => Promise<void>;
}

export const BACKOFF_START_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
/** A process that ran this long before exiting starts its back-off from the beginning again. */
const STABLE_AFTER_MS = 10_000;

// Every live process group, killed on the way out even when `rig up` exits on an error; the
// orphan guard covers the deaths that run no exit hook, but only after this process is gone.
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  });
}

export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export class SupervisedProcess extends EventEmitter<{ state: [ProcessState]; exit: [number | null, NodeJS.Signals | null] }> {
  readonly spec: ProcessSpec;
  state: ProcessState = 'stopped';
  restarts = 0;
  message: string | undefined;
  since = new Date();
  #child: ChildProcess | undefined;
  #log: LogFile;
  #stopping = false;
  #backoffMs = BACKOFF_START_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #lastLines: string[] = [];
  #startedAt = 0;
  #failures = 0;

  constructor(spec: ProcessSpec) {
    super();
    this.spec = spec;
    this.#log = new LogFile(spec.logFile);
    installExitHook();
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    this.#stopping = false;
    clearTimeout(this.#restartTimer);
    try {
      await this.spec.beforeStart?.();
    } catch (err) {
      return this.#fail(`cannot prepare ${this.spec.name}: ${(err as Error).message}`);
    }
    if (this.#stopping) return;
    this.#lastLines = [];
    this.#startedAt = Date.now();
    this.#log.write(`--- ${new Date().toISOString()} starting: ${[this.spec.command, ...this.spec.args].join(' ')}`);
    const child = spawn(this.spec.command, this.spec.args, { cwd: this.spec.cwd, env: this.spec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) {
        const what =
          err.code === 'ENOENT'
            ? `command "${this.spec.command}" not found (in ${this.spec.cwd}, or on PATH)`
            : err.code === 'EACCES'
              ? `command "${this.spec.command}" is not executable`
              : `cannot start "${this.spec.command}": ${err.message}`;
        this.#child = undefined;
        this.#fail(what);
      }
    });
    if (child.pid === undefined) return;
    liveGroups.add(child.pid);
    guardGroup(child.pid);
    const onLine = (line: string) => {
      this.#log.write(line);
      this.#lastLines.push(line);
      if (this.#lastLines.length > 5) this.#lastLines.shift();
      if (this.spec.print && (!this.spec.echo || this.spec.echo(line))) this.spec.print(line);
    };
    forEachLine(child.stdout!, onLine);
    forEachLine(child.stderr!, onLine);
    this.#setState('starting');
    child.once('exit', (code, signal) => this.#onExit(child, code, signal));
    this.#probe(true);
  }

  #fail(message: string): void {
    this.message = message;
    this.#log.write(`--- ${message}`);
    this.#setState('failed', message);
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(this.#probeTimer);
    if (child.pid !== undefined) {
      // Whatever the process left behind in its group goes with it.
      killGroup(child.pid, 'SIGKILL');
      liveGroups.delete(child.pid);
      releaseGroup(child.pid);
    }
    if (this.#child === child) this.#child = undefined;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    this.#log.write(`--- ${new Date().toISOString()} ${how}`);
    this.emit('exit', code, signal);
    if (this.#stopping) return this.#setState('stopped');
    const last = this.#lastLines.filter((l) => l.trim()).at(-1);
    if (Date.now() - this.#startedAt > STABLE_AFTER_MS) this.#backoffMs = BACKOFF_START_MS;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(BACKOFF_MAX_MS, this.#backoffMs * 2);
    this.#setState('crashed', `${how}${last ? ` (last output: ${last.slice(0, 200)})` : ''}; restarting in ${(delay / 1000).toFixed(1)}s`);
    this.#restartTimer = setTimeout(() => {
      this.restarts++;
      void this.start();
    }, delay);
  }

  #probe(starting: boolean): void {
    const probe = this.spec.readiness;
    if (!probe) return this.#setState('ready');
    const period = starting ? 100 : (this.spec.periodMs ?? 1000);
    this.#probeTimer = setTimeout(async () => {
      if (!this.#child || this.#stopping) return;
      const ok = await probe().catch(() => false);
      if (!this.#child || this.#stopping) return;
      if (ok) {
        this.#failures = 0;
        if (this.state !== 'ready') this.#setState('ready');
      } else if (this.state === 'ready' && ++this.#failures >= (this.spec.failureThreshold ?? 3)) {
        this.#setState('starting', `readiness probe failed ${this.#failures} times`);
      }
      this.#probe(this.state !== 'ready');
    }, period);
  }

  #setState(state: ProcessState, message?: string): void {
    if (this.state === state && this.message === message) return;
    this.state = state;
    this.message = message;
    this.since = new Date();
    this.emit('state', state);
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#probeTimer);
    const child = this.#child;
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      this.#setState('stopped');
      await this.#log.close();
      return;
    }
    this.#setState('stopping');
    const pid = child.pid;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!killGroup(pid, 'SIGTERM')) child.kill('SIGTERM');
    });
    await this.#log.close();
  }
}
