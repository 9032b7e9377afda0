// `rig down`: stops the local mesh that `rig up` runs from this state directory (from another
// terminal), and any process an earlier `rig up` left behind.
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { cleanupNetnsLeftovers } from '../../local/netns/index.ts';
import { reapLeftovers } from '../../local/reaper.ts';
import { DEFAULT_STATE_DIR, StateDir, isAlive } from '../../local/state-dir.ts';

export function define(cmd: Command): void {
  cmd
    .option('--state-dir <dir>', 'state directory of the running `rig up`', DEFAULT_STATE_DIR)
    .option('--timeout <seconds>', 'how long to wait for a graceful stop before killing', '30')
    .option('--force', 'also remove the pods (network namespaces, veths, bridge) a `rig up --isolation netns` left behind (root)')
    .option('--netns-prefix <prefix>', 'with --force: prefix of the pods\' namespace names', 'rig')
    .action(async (opts: { stateDir: string; timeout: string; force?: boolean; netnsPrefix: string }) => {
      const sd = new StateDir(opts.stateDir);
      const s = sd.readStatus();
      if (s && isAlive(s.pid)) {
        process.kill(s.pid, 'SIGTERM');
        const deadline = Date.now() + Number(opts.timeout) * 1000;
        while (isAlive(s.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        if (isAlive(s.pid)) {
          process.kill(s.pid, 'SIGKILL');
          process.stderr.write(`rig up (pid ${s.pid}) did not stop within ${opts.timeout}s; killed it\n`);
        }
      }
      const reaped = await reapLeftovers(sd.root);
      if (opts.force) {
        const left = await cleanupNetnsLeftovers({ nsPrefix: opts.netnsPrefix, force: true });
        const removed = [...left.namespaces, ...left.links];
        if (removed.length) process.stdout.write(`removed leftover pods and links: ${removed.join(', ')}\n`);
        if (!s) return;
      }
      if (!s && reaped === 0) throw new RigError('MESH_ERR_NOT_FOUND', `no local mesh is running from ${sd.root}`);
      process.stdout.write(`local mesh stopped${reaped ? ` (and ${reaped} leftover process(es) killed)` : ''}\n`);
    });
}
