// `--controlplane` of the commands that read the control plane's debug endpoints: when not given,
// the control plane of the local mesh running from --state-dir (`rig up`, `rig demo`), else istiod's
// usual monitoring port on this host.
import type { Command } from 'commander';
import { DEFAULT_STATE_DIR, StateDir, isAlive } from '../../local/state-dir.ts';
import { runningMonitoringUrl } from '../../local/status.ts';

const FALLBACK = 'http://127.0.0.1:15014';

export function addControlPlaneOptions(cmd: Command): Command {
  return cmd
    .option('--controlplane <url>', `the control plane monitoring address (default: the running \`rig up\`'s, else ${FALLBACK})`)
    .option('--state-dir <dir>', 'state directory of the running `rig up`', DEFAULT_STATE_DIR);
}

export function controlPlaneUrl(o: { controlplane?: string; stateDir: string }): string {
  return o.controlplane ?? runningMonitoringUrl(new StateDir(o.stateDir).readStatus(), isAlive) ?? FALLBACK;
}

/**
 * The admin URL of a proxy of the local mesh running from --state-dir, named as `rig status` or
 * `rig proxy-status` name it (`reviews-v1-0`, `reviews-v1-0.default`); undefined when it is not one
 * of its processes or, with --isolation netns, its admin is inside its pod.
 */
export function localProxyAdmin(o: { controlplane?: string; stateDir: string }, proxy: string): string | undefined {
  if (o.controlplane) return undefined;
  const s = new StateDir(o.stateDir).readStatus();
  if (!s || !isAlive(s.pid) || s.isolation === 'netns') return undefined;
  const p = s.processes.find((p) => p.kind !== 'controlplane' && (p.name === proxy || `${p.name}.${p.namespace}` === proxy));
  return p?.ports.admin ? `http://127.0.0.1:${p.ports.admin}` : undefined;
}
