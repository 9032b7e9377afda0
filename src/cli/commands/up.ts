// `rig up -f PATH...`: a local mesh in the foreground (control plane, gateways, every Workload
// replica with its sidecar), following the configuration as the files change.
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { loadMeshConfig } from '../../model/mesh-config.ts';
import { requireNetnsSupport } from '../../local/netns/index.ts';
import { runInForeground } from '../../local/run-up.ts';
import { DEFAULT_STATE_DIR, StateDir } from '../../local/state-dir.ts';

export interface UpFlags {
  filename?: string[];
  stateDir: string;
  gatewayBind: string;
  gatewayPort: string[];
  ingress: boolean;
  xdsPort?: string;
  meshConfig?: string;
  credentialsDir?: string;
  isolation: string;
  netnsPrefix: string;
}

const ISOLATIONS = ['explicit', 'netns'] as const;

export function parsePortMap(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) {
    const m = /^(\d+)=(\d+)$/.exec(v);
    const [from, to] = m ? [Number(m[1]), Number(m[2])] : [0, -1];
    if (!m || from < 1 || from > 65535 || to < 0 || to > 65535) {
      throw new RigError('MESH_ERR_USAGE', `--gateway-port "${v}": write GATEWAYPORT=HOSTPORT, e.g. 8080=18080 (HOSTPORT 0 = any free port)`);
    }
    out[from] = to;
  }
  return out;
}

export function defineUpOptions(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', 'state directory: status, logs, applied config, CA and VIPs', DEFAULT_STATE_DIR)
    .option('--gateway-bind <address>', 'host address the gateways bind their Gateway server ports on', '127.0.0.1')
    .option('--gateway-port <map...>', 'bind Gateway server port P on host port H instead of P (P=H, repeatable)', [])
    .option('--xds-port <port>', 'xDS port of the control plane (default: any free port)')
    .option('--mesh-config <file>', "Istio MeshConfig YAML (e.g. outboundTrafficPolicy: {mode: REGISTRY_ONLY})")
    .option('--isolation <mode>', 'explicit: apps use HTTP_PROXY, no privileges; netns: a network namespace per replica with transparent capture (Linux, root)', 'explicit')
    .option('--netns-prefix <prefix>', 'with --isolation netns: prefix of the pods\' namespace names (rig exec --prefix)', 'rig')
    .option('--credentials-dir <dir>', 'Gateway credentialName secrets as DIR/<name>/{tls.crt,tls.key,ca.crt}; DIR/cacerts/ is a plug-in CA, as Istio\'s cacerts secret (default: STATE-DIR/controlplane/credentials)');
}

export async function upOptions(flags: UpFlags, paths: string[]) {
  const mesh = flags.meshConfig ? await loadMeshConfig(flags.meshConfig) : undefined;
  if (flags.xdsPort !== undefined && !(/^\d+$/.test(flags.xdsPort) && Number(flags.xdsPort) <= 65535)) {
    throw new RigError('MESH_ERR_USAGE', `--xds-port "${flags.xdsPort}": give a port number (0 = any free port)`);
  }
  const isolation = ISOLATIONS.find((i) => i === flags.isolation);
  if (!isolation) {
    throw new RigError('MESH_ERR_USAGE', `--isolation "${flags.isolation}": use explicit (HTTP_PROXY, no privileges) or netns (a network namespace per replica; Linux, root)`);
  }
  if (isolation === 'netns') await requireNetnsSupport();
  return {
    paths,
    isolation,
    netnsPrefix: flags.netnsPrefix,
    stateDir: new StateDir(flags.stateDir),
    gatewayBind: flags.gatewayBind,
    gatewayPorts: parsePortMap(flags.gatewayPort),
    ingress: flags.ingress,
    xdsPort: flags.xdsPort === undefined ? undefined : Number(flags.xdsPort),
    credentialsDir: flags.credentialsDir,
    mesh,
  };
}

export function define(cmd: Command): void {
  defineUpOptions(cmd)
    .option('-f, --filename <paths...>', 'files or directories of Services, Workloads and Istio resources (directories are watched)')
    .option('--no-ingress', 'do not run the ingress gateway unless a Gateway selects it')
    .action(async (flags: UpFlags) => {
      if (!flags.filename?.length) throw new RigError('MESH_ERR_USAGE', 'rig up needs -f PATH (files or directories); e.g. rig up -f examples/bookinfo/local');
      await runInForeground(await upOptions(flags, flags.filename));
    });
}
