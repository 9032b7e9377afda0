// A server under test: a pinned process listening on a loopback port, ready once it answers.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPinned, stop, type Managed, type StartOptions } from '../lib/process-group.ts';
import { waitForPort } from '../lib/ports.ts';

export interface Server {
  name: string;
  /** What the server is in the topology; CPU and memory are reported per role. */
  role: 'upstream' | 'proxy' | 'client-proxy' | 'server-proxy' | 'collector';
  port: number;
  core: number;
  proc: Managed;
  /** Milliseconds from spawn until the port accepted connections. */
  startupMs: number;
  stop(graceMs?: number): Promise<void>;
}

const scratch: string[] = [];

/** A temporary directory for one server's config and logs, removed when the run ends. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `rig-bench-${prefix}-`));
  if (scratch.push(dir) === 1) process.once('exit', () => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));
  return dir;
}

/** Starts the process and waits for its port; a process that exits first is an error with its output. */
export async function startServer(
  start: StartOptions,
  role: Server['role'],
  port: number,
  timeoutMs = 15_000,
): Promise<Server> {
  const t0 = performance.now();
  const proc = startPinned(start);
  const exitedEarly = proc.exited.then((why) => {
    throw new Error(`${why} before listening on port ${port}:\n${proc.output().trim()}`);
  });
  try {
    await Promise.race([waitForPort(port, timeoutMs), exitedEarly]);
  } catch (err) {
    await stop(proc);
    throw err;
  }
  exitedEarly.catch(() => {}); // a later exit is noticed by the case through proc.exited
  return { name: start.name, role, port, core: start.core, proc, startupMs: performance.now() - t0, stop: (graceMs?: number) => stop(proc, graceMs) };
}
