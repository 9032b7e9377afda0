// `rig proxy-status`: the sync state of every connected proxy, like istioctl proxy-status.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { RigError } from '../../core/errors.ts';
import { addControlPlaneOptions, controlPlaneUrl } from './controlplane-option.ts';

export function define(cmd: Command): void {
  addControlPlaneOptions(cmd)
    .argument('[proxy]', 'show only this proxy (<pod>.<namespace> or node id), with NACK details')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .action(async (proxy: string | undefined, o: { controlplane?: string; stateDir: string; output: string }) => {
      const { syncz } = await import('../../xds/debug/controlplane-client.ts');
      const { proxyStatusTable } = await import('../../xds/debug/tables.ts');
      let rows = await syncz(controlPlaneUrl(o));
      if (proxy) {
        rows = rows.filter((r) => r.proxy === proxy || r.proxy_id === proxy || String(r.proxy).startsWith(proxy));
        if (!rows.length) throw new RigError('MESH_ERR_NOT_FOUND', `no connected proxy matches "${proxy}" (run rig proxy-status to list them)`);
      }
      if (o.output === 'json') process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      else if (o.output === 'yaml') process.stdout.write(stringify(rows));
      else if (o.output === 'table') {
        process.stdout.write(proxyStatusTable(rows));
        if (proxy) {
          for (const r of rows) {
            for (const t of ['cluster', 'listener', 'route', 'endpoint', 'secret']) {
              const nack = r[`${t}_nack`] as { version: string; message: string; at: string } | undefined;
              if (nack) process.stdout.write(`${t} NACK of version ${nack.version} at ${nack.at}: ${nack.message}\n`);
            }
          }
        }
      } else throw new RigError('MESH_ERR_USAGE', `unknown output format "${o.output}" (table, json or yaml)`);
    });
}
