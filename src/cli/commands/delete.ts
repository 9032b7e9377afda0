// `rig delete -f PATH...`: removes from the running local mesh the resources named in the files
// (validated first, like apply). Resources that come from a file `rig up -f` watches are not
// deleted from your files: the message says which file to edit.
import type { Command } from 'commander';
import { describeResource, loadPaths, resourceKey } from '../../api/index.ts';
import { RigError } from '../../core/errors.ts';
import { deleteResource } from '../../local/applied-config.ts';
import { DEFAULT_STATE_DIR, StateDir } from '../../local/state-dir.ts';
import { validated } from './apply.ts';

export function define(cmd: Command): void {
  cmd
    .option('-f, --filename <paths...>', 'files or directories (recursive), or - for standard input')
    .option('--state-dir <dir>', 'state directory of the running `rig up`', DEFAULT_STATE_DIR)
    .action(async (opts: { filename?: string[]; stateDir: string }) => {
      const resources = await validated(opts.filename, 'delete');
      const sd = new StateDir(opts.stateDir);
      const status = sd.readStatus();
      const watched = status ? (await loadPaths(status.configPaths, { validate: false })).resources : [];
      const watchedByKey = new Map(watched.map((r) => [resourceKey(r), r]));
      let missing = 0;
      for (const r of resources) {
        if (deleteResource(sd.appliedDir, r)) {
          process.stdout.write(`${describeResource(r)} deleted\n`);
          continue;
        }
        missing++;
        const w = watchedByKey.get(resourceKey(r));
        process.stderr.write(
          w?.source
            ? `${describeResource(r)} comes from ${w.source.file}:${w.source.line}, which rig up watches; remove it from that file\n`
            : `${describeResource(r)} not found (it was not applied with rig apply)\n`,
        );
      }
      if (missing) throw new RigError('MESH_ERR_NOT_FOUND', `${missing} resource(s) not deleted`);
    });
}
