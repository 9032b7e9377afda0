// `rig apply -f PATH...`: validates, then adds or replaces resources in the running local mesh
// (like kubectl apply). Any invalid file refuses the whole apply: nothing changes.
import type { Command } from 'commander';
import { describeResource, formatDiagnostic, hasErrors, loadPaths, type Resource } from '../../api/index.ts';
import { RigError } from '../../core/errors.ts';
import { applyResource } from '../../local/applied-config.ts';
import { DEFAULT_STATE_DIR, StateDir, isAlive } from '../../local/state-dir.ts';

export async function validated(paths: string[] | undefined, verb: string): Promise<Resource[]> {
  if (!paths?.length) throw new RigError('MESH_ERR_USAGE', `rig ${verb} needs -f PATH (files or directories, or - for standard input)`);
  // As kubectl: the same resource twice is applied in order (the last one wins).
  const { resources, diagnostics } = await loadPaths(paths, { duplicates: 'keep' });
  for (const d of diagnostics) (d.severity === 'Error' ? process.stderr : process.stdout).write(formatDiagnostic(d) + '\n');
  if (hasErrors(diagnostics)) {
    throw new RigError('MESH_ERR_INVALID_CONFIG', `refused: ${diagnostics.filter((d) => d.severity === 'Error').length} error(s) above; nothing was ${verb === 'apply' ? 'applied' : 'deleted'}`);
  }
  if (resources.length === 0) throw new RigError('MESH_ERR_INVALID_CONFIG', `no resources in ${paths.join(' ')}`);
  return resources;
}

export function define(cmd: Command): void {
  cmd
    .option('-f, --filename <paths...>', 'files or directories (recursive), or - for standard input')
    .option('--state-dir <dir>', 'state directory of the running `rig up`', DEFAULT_STATE_DIR)
    .action(async (opts: { filename?: string[]; stateDir: string }) => {
      const resources = await validated(opts.filename, 'apply');
      const sd = new StateDir(opts.stateDir);
      const running = sd.readStatus();
      for (const r of resources) process.stdout.write(`${describeResource(r)} ${applyResource(sd.appliedDir, r)}\n`);
      if (!running || !isAlive(running.pid)) process.stdout.write(`(no local mesh is running from ${sd.root}; this takes effect at the next rig up)\n`);
      // As in Istio, where a ProxyConfig reaches a pod when it is (re)created.
      else if (resources.some((r) => r.kind === 'ProxyConfig')) process.stdout.write('(a ProxyConfig takes effect when a proxy starts: running sidecars and gateways keep theirs until they restart)\n');
    });
}
