// Stops the supervised process groups when `rig up` dies without stopping them (SIGKILL, the
// OOM killer, a crash in native code). Each app runs in its own process group and Node cannot set
// PR_SET_PDEATHSIG for a spawned child, so nothing in the kernel would stop them. A tiny shell
// process (its own group, so Ctrl-C on the terminal does not reach it) reads the live groups
// from a pipe; the pipe closes however this process ends, and on that end of input it SIGKILLs
// every group still registered. On a normal stop every group has been unregistered by then.
import { spawn, type ChildProcess } from 'node:child_process';

const GUARD_SCRIPT = `
groups=' '
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups\${line#+} " ;;
    -*) keep=' '; for g in $groups; do [ "$g" = "\${line#-}" ] || keep="$keep$g "; done; groups=$keep ;;
  esac
done
for g in $groups; do kill -KILL "-$g" 2>/dev/null; done
`;

let guard: ChildProcess | undefined;

function send(line: string): void {
  if (!guard) {
    guard = spawn('/bin/sh', ['-c', GUARD_SCRIPT], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    // Without a shell the groups are still stopped on a normal exit (supervised-process.ts).
    guard.on('error', () => undefined);
    guard.stdin!.on('error', () => undefined);
    guard.unref();
    (guard.stdin as unknown as { unref(): void }).unref(); // a net.Socket over the pipe
  }
  guard.stdin!.write(line + '\n');
}

export function guardGroup(pgid: number): void {
  send(`+${pgid}`);
}

export function releaseGroup(pgid: number): void {
  send(`-${pgid}`);
}
