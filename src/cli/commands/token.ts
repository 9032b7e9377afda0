// `rig token issue|revoke`: local bootstrap tokens that let a workload started by hand prove its
// identity to the control plane's CA (rig up issues one per workload itself).
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { BootstrapTokens } from '../../ca/ca-tokens.ts';
import { StateDir } from '../../local/state-dir.ts';

interface IssueOptions {
  namespace: string;
  serviceAccount: string;
  trustDomain: string;
  ttl: string;
  stateDir?: string;
  outFile?: string;
  output: string;
}

interface RevokeOptions {
  tokenFile?: string;
  stateDir?: string;
}

/**
 * The control plane state directory holding the CA: as given to `rig controlplane --state-dir`; a
 * `rig up` state directory (with controlplane/ inside) also works; default: `rig up`'s in the
 * working directory (.rig/controlplane).
 */
function caStateDir(dir: string | undefined): string {
  if (!dir) return new StateDir().controlPlaneDir;
  const nested = new StateDir(dir).controlPlaneDir;
  return !fs.existsSync(path.join(dir, 'ca')) && fs.existsSync(path.join(nested, 'ca')) ? nested : dir;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Parses a lifetime such as 90s, 30m, 24h or 365d into seconds. */
export function parseTtl(v: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(v.trim());
  if (!m || Number(m[1]) === 0) throw new RigError('MESH_ERR_USAGE', `--ttl: "${v}" is not a lifetime like 3600s, 30m, 24h or 365d`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

export function define(cmd: Command): void {
  cmd
    .command('issue')
    .description('issue a bootstrap token for a workload identity (printed on stdout)')
    .requiredOption('--namespace <ns>', 'workload namespace')
    .requiredOption('--service-account <sa>', 'workload service account')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option('--ttl <duration>', 'token lifetime (s, m, h, d)', '365d')
    .option('--state-dir <dir>', 'state directory of `rig controlplane` (or of `rig up`; default .rig/controlplane)')
    .option('--out-file <file>', 'write the token to this file (mode 0600) instead of stdout')
    .option('-o, --output <format>', 'text (the token) or json (token, id, identity, expiry)', 'text')
    .action(async (opts: IssueOptions) => {
      if (opts.output !== 'text' && opts.output !== 'json') throw new RigError('MESH_ERR_USAGE', `unknown output format "${opts.output}": use text or json`);
      const tokens = new BootstrapTokens(caStateDir(opts.stateDir));
      const t = await tokens.issue({ namespace: opts.namespace, serviceAccount: opts.serviceAccount, trustDomain: opts.trustDomain, ttlSeconds: parseTtl(opts.ttl) });
      if (opts.outFile) {
        fs.writeFileSync(opts.outFile, t.token + '\n', { mode: 0o600 });
        fs.chmodSync(opts.outFile, 0o600);
      }
      if (opts.output === 'json') {
        process.stdout.write(JSON.stringify({ ...(opts.outFile ? { file: opts.outFile } : { token: t.token }), jti: t.jti, identity: t.identity, expiresAt: t.expiresAt.toISOString() }, null, 2) + '\n');
      } else if (opts.outFile) {
        process.stdout.write(`token ${t.jti} for ${t.identity} written to ${opts.outFile} (expires ${t.expiresAt.toISOString()})\n`);
      } else {
        process.stdout.write(t.token + '\n');
      }
    });
  cmd
    .command('revoke')
    .description('revoke a bootstrap token (given whole, by file, or by its id); the CA refuses it from then on')
    .argument('[token-or-id]', 'the token itself or its id (jti)')
    .option('--token-file <file>', 'read the token to revoke from this file')
    .option('--state-dir <dir>', 'state directory of `rig controlplane` (or of `rig up`; default .rig/controlplane)')
    .action((tokenOrId: string | undefined, opts: RevokeOptions) => {
      let value = tokenOrId;
      if (opts.tokenFile) {
        try {
          value = fs.readFileSync(opts.tokenFile, 'utf8').trim();
        } catch (err) {
          throw new RigError('MESH_ERR_FILE', `cannot read --token-file ${opts.tokenFile}: ${(err as Error).message}`);
        }
      }
      if (!value) throw new RigError('MESH_ERR_USAGE', 'rig token revoke needs a token, a token id (jti) or --token-file FILE');
      const jti = new BootstrapTokens(caStateDir(opts.stateDir)).revoke(value);
      process.stdout.write(`token ${jti} revoked\n`);
    });
}
