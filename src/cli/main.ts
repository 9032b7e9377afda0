// The `rig` binary. Each command lives in its own module under commands/ and is imported only
// when it runs, so `rig proxy` never loads the control plane (start-up time and memory matter).
import { Command } from 'commander';
import { COMMANDS } from './commands/index.ts';
import { RigError } from '../core/errors.ts';
import { VERSION } from '../core/version.ts';
import { keepTickObjectMaps } from '../core/tick-object-maps.ts';

keepTickObjectMaps();

export async function main(argv: string[]): Promise<void> {
  const program = new Command('rig')
    .description("Rigging: a service mesh in TypeScript that speaks Istio's API")
    .version(VERSION, '--version', 'print the version')
    .showHelpAfterError('(run `rig --help` for the list of commands)');
  const wanted = argv[2];
  const only = COMMANDS.find((c) => c.name === wanted || c.aliases?.includes(wanted ?? ''));
  for (const c of only ? [only] : COMMANDS) {
    const mod = await c.load();
    const cmd = program.command(c.name).description(c.summary);
    for (const a of c.aliases ?? []) cmd.alias(a);
    mod.define(cmd);
  }
  await program.parseAsync(argv);
}

// `rig pc all -o json | head`: the reader left. Writes after that go nowhere, as with Unix tools,
// instead of an EPIPE stack trace (and a long-running command keeps running its mesh).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
});

main(process.argv).catch((err: unknown) => {
  if (err instanceof RigError) {
    process.stderr.write(`rig: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`rig: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 70;
  }
});
