// `rig exec WORKLOAD -- CMD...`: runs a command inside a pod's network namespace (pods of
// `rig up --isolation netns`), like `kubectl exec`. The command sees the pod's address, its
// resolv.conf (DNS through the sidecar) and its capture rules.
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { listNetns, netnsArgv, requireNetnsSupport } from '../../local/netns/index.ts';

interface Opts {
  replica: string;
  prefix: string;
  uid?: string;
}

export function define(cmd: Command): void {
  cmd
    .argument('<workload>', 'workload name (e.g. productpage-v1), or a pod namespace name')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-r, --replica <n>', 'replica number of the workload', '0')
    .option('--prefix <prefix>', 'namespace name prefix used by rig up', 'rig')
    .option('-u, --uid <uid>', 'run as this numeric user (and group) id instead of root')
    .usage('[options] WORKLOAD -- COMMAND [ARGS...]')
    .action(async (workload: string, command: string[], o: Opts) => {
      await requireNetnsSupport();
      if (!/^\d+$/.test(o.replica)) throw new RigError('MESH_ERR_USAGE', `--replica: "${o.replica}" is not a number`);
      if (o.uid !== undefined && !/^\d+$/.test(o.uid)) throw new RigError('MESH_ERR_USAGE', `--uid: "${o.uid}" is not a numeric id`);
      const all = await listNetns();
      const netns = [`${o.prefix}-${workload}-${o.replica}`, workload].find((n) => all.includes(n));
      if (!netns) {
        const pods = all.filter((n) => n.startsWith(`${o.prefix}-`));
        throw new RigError(
          'MESH_ERR_NOT_FOUND',
          `no pod ${o.prefix}-${workload}-${o.replica}: ` +
            (pods.length ? `running pods are ${pods.join(', ')}` : 'no pods are running (start them with `rig up --isolation netns`)'),
        );
      }
      const uid = o.uid === undefined ? undefined : Number(o.uid);
      const [file, ...args] = netnsArgv(netns, command[0], command.slice(1), { uid });
      const child = spawn(file, args, { stdio: 'inherit' });
      const code = await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (c, signal) => resolve(c ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
      });
      process.exitCode = code;
    });
}
