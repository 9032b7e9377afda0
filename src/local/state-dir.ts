// The state directory of a local mesh (default `.rig/` in the working directory): the status
// file, the log files, the config applied with `rig apply`, and the control plane's own state
// (its CA, allocated VIPs), which survive between runs.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RigError } from '../core/errors.ts';
import type { MeshStatus } from './status.ts';

export const DEFAULT_STATE_DIR = '.rig';

export class StateDir {
  readonly root: string;

  constructor(dir: string = DEFAULT_STATE_DIR, cwd = process.cwd()) {
    this.root = path.resolve(cwd, dir);
  }

  get statusFile(): string {
    return path.join(this.root, 'status.json');
  }
  get logsDir(): string {
    return path.join(this.root, 'logs');
  }
  get appliedDir(): string {
    return path.join(this.root, 'applied');
  }
  get controlPlaneDir(): string {
    return path.join(this.root, 'controlplane');
  }
  get runDir(): string {
    return path.join(this.root, 'run');
  }

  ensure(): void {
    for (const d of [this.root, this.logsDir, this.appliedDir, this.controlPlaneDir, this.runDir]) mkdirSync(d, { recursive: true });
  }

  logFile(name: string): string {
    return path.join(this.logsDir, `${name}.log`);
  }

  writeStatus(status: MeshStatus): void {
    const tmp = `${this.statusFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(status, null, 2) + '\n');
    renameSync(tmp, this.statusFile);
  }

  /** Removes the status file if it is still the one written by `pid`. */
  removeStatus(pid: number): void {
    if (this.readStatus()?.pid === pid) rmSync(this.statusFile, { force: true });
  }

  /** The status of the mesh running from this state directory, or undefined when none was started here. */
  readStatus(): MeshStatus | undefined {
    let text: string;
    try {
      text = readFileSync(this.statusFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RigError('MESH_ERR_FILE', `cannot read ${this.statusFile}: ${(err as Error).message}`);
    }
    try {
      return JSON.parse(text) as MeshStatus;
    } catch {
      throw new RigError('MESH_ERR_FILE', `${this.statusFile} is not valid JSON; remove it if no \`rig up\` is running from ${this.root}`);
    }
  }

  /** The status of a `rig up` that is still running, or a clear error saying none is. */
  requireRunning(): MeshStatus {
    const s = this.readStatus();
    if (!s || !isAlive(s.pid)) {
      throw new RigError(
        'MESH_ERR_NOT_FOUND',
        `no local mesh is running from ${this.root}; start one with \`rig up -f DIR\` (or pass --state-dir if it runs from another directory)`,
      );
    }
    return s;
  }
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
