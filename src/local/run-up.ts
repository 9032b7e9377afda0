// Runs a Supervisor in the foreground the way `rig up` and `rig demo` do: Ctrl-C or SIGTERM stops
// everything gracefully (a second Ctrl-C kills at once); a crash of this process still kills
// every child on the way out (see supervised-process.ts).
import { LogConsole } from './log-output.ts';
import { Supervisor, type UpOptions } from './supervisor.ts';

export async function runInForeground(opts: Omit<UpOptions, 'console'>, onReady?: (sup: Supervisor) => void | Promise<void>, onStop?: () => void): Promise<void> {
  const console_ = new LogConsole();
  const sup = new Supervisor({ ...opts, console: console_ });
  let stopping = false;
  const stop = async (why: string, code: number) => {
    if (stopping) {
      console_.error('stopping now (killing every process)');
      process.exit(130);
    }
    stopping = true;
    onStop?.();
    console_.info(`${why}: stopping every process...`);
    await sup.stop().catch((err: unknown) => console_.error(`error while stopping: ${(err as Error).message}`));
    console_.info('stopped; nothing is left running');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop('interrupted', 0));
  process.on('SIGTERM', () => void stop('terminated', 0));
  process.on('SIGHUP', () => void stop('terminal closed', 0));
  process.on('uncaughtException', (err) => {
    console_.error(`internal error: ${err.stack ?? err}`);
    void stop('internal error', 70);
  });
  try {
    await sup.start();
  } catch (err) {
    await sup.stop().catch(() => undefined);
    throw err;
  }
  void sup.whenReady().then(async () => {
    const secs = ((sup.readyAt!.getTime() - sup.startedAt.getTime()) / 1000).toFixed(1);
    console_.info(`all ${sup.processes().length} workloads and gateways ready in ${secs}s`);
    await onReady?.(sup);
  });
  // Stay in the foreground until a signal stops us.
  await new Promise(() => undefined);
}
