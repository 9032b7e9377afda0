// The workload's process as the agent sees it, from a pid file its runtime keeps (`rig up` writes
// it when it starts the app and removes it when the app exits; a VM's service manager can do the
// same, e.g. systemd's PIDFile): the workload is down while the file is missing or names no live
// process. The file's directory is watched so that a start or an exit is acted on at once.
import fs from 'node:fs';
import path from 'node:path';

export interface WorkloadProcess {
  /** Undefined while the process runs, else why the workload is down. */
  down(): string | undefined;
  close(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user (a pod's sidecar runs as 1337, its app as the user).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Watches `pidFile`; `onChange` runs when it is written, replaced or removed. */
export function watchWorkloadProcess(pidFile: string, onChange: () => void): WorkloadProcess {
  const file = path.resolve(pidFile);
  const watcher = fs.watch(path.dirname(file), (_event, name) => {
    if (name === null || name === path.basename(file)) onChange();
  });
  watcher.unref();
  return {
    down() {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8').trim();
      } catch {
        return `the workload's process is not running (no pid file ${file})`;
      }
      const pid = Number(text);
      if (!/^\d+$/.test(text) || pid <= 0) return `the workload's pid file ${file} holds no process id`;
      return alive(pid) ? undefined : `the workload's process ${pid} has exited`;
    },
    close: () => watcher.close(),
  };
}
