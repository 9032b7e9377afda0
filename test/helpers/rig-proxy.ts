// `rig proxy` as a real process fed by a control plane: admin, ready and stats ports picked by the
// OS, its log kept (printed with RIG_TEST_DEBUG), stopped when the test ends.
import type { ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { spawnRig, stopProcess } from './cli.ts';
import type { MeshControlPlane } from './mesh-control-plane.ts';

export interface RigProxy {
  process: ChildProcess;
  /** The last 8000 characters the proxy logged. */
  log(): string;
}

export interface RigProxyOptions {
  /** The control plane's plaintext xDS port. */
  xdsPort: number;
  /** Where the workload certificate comes from: the CA's TLS port, the root to trust and the bootstrap token. */
  ca?: { port: number; rootFile: string; tokenFile: string };
  /** Sees every chunk the proxy logs. */
  onLog?: (chunk: Buffer) => void;
}

/** Starts `rig proxy --xds-address … [CA flags] …args`. */
export function startRigProxy(t: TestContext, args: string[], opts: RigProxyOptions): RigProxy {
  const caArgs = opts.ca ? ['--ca-address', `127.0.0.1:${opts.ca.port}`, '--ca-root-file', opts.ca.rootFile, '--token-file', opts.ca.tokenFile] : [];
  const debug = process.env.RIG_TEST_DEBUG ? ['--log-level', 'debug'] : [];
  const child = spawnRig(['proxy', '--xds-address', `127.0.0.1:${opts.xdsPort}`, ...caArgs, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', '--log-format', 'text', ...debug, ...args]);
  let log = '';
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-8000);
    opts.onLog?.(d);
  });
  t.after(async () => {
    await stopProcess(child);
    if (process.env.RIG_TEST_DEBUG) process.stderr.write(log);
  });
  return { process: child, log: () => log };
}

/**
 * The sidecar of workload `name` in `namespace` (service account `name`, workload `<name>-0`,
 * label app=<name>) with a bootstrap token from the mesh CA; `args` add ports and the like.
 */
export async function startSidecar(t: TestContext, mesh: MeshControlPlane, sidecar: { namespace: string; name: string; args: string[]; onLog?: (chunk: Buffer) => void }): Promise<RigProxy> {
  const { namespace, name } = sidecar;
  const tokenFile = await mesh.tokenFile(namespace, name);
  const workload = ['--namespace', namespace, '--service-account', name, '--workload-name', `${name}-0`, '--labels', `app=${name}`];
  return startRigProxy(t, [...workload, ...sidecar.args], { xdsPort: mesh.cp.ports.xds, ca: { port: mesh.caPort, rootFile: mesh.rootFile, tokenFile }, onLog: sidecar.onLog });
}
