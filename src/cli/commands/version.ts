import type { Command } from 'commander';
import { VERSION } from '../../core/version.ts';

export function define(cmd: Command): void {
  cmd.option('-o, --output <format>', 'output format: text or json', 'text').action((opts: { output: string }) => {
    const info = { version: VERSION, node: process.versions.node, platform: `${process.platform}/${process.arch}` };
    process.stdout.write(opts.output === 'json' ? JSON.stringify(info, null, 2) + '\n' : `rig version ${info.version} (node ${info.node}, ${info.platform})\n`);
  });
}
