// The command table: name, one-line summary and a lazy loader. A command module exports
// `define(cmd)`, which declares its options and action on the given commander Command.
import type { Command } from 'commander';

export interface CommandModule {
  define(cmd: Command): void;
}

export interface CommandEntry {
  name: string;
  summary: string;
  aliases?: string[];
  load(): Promise<CommandModule>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'version', summary: 'print the client (and control plane) version', load: () => import('./version.ts') },
];
