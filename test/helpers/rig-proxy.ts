// `rig proxy` as a real process: fed by a control plane (and its CA) or by a bootstrap file, its
// admin, ready and stats ports picked by the OS, its output kept (the log printed with
// RIG_TEST_DEBUG), stopped when the test ends.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { spawnRig, stopProcess } from './cli.ts';
import type { MeshControlPlane } from './mesh-control-plane.ts';
import { tempDir } from './temp-dir.ts';

/**
 * How long a `rig` process may take from spawn to listening. Start-up is CPU work (Node, the
 * modules from TypeScript source, the Envoy protos: ~1.5 s of CPU each on the shared 2-core
 * machine), and a test that starts seven processes at once beside another test file's gets a
 * fraction of a core for each: 10-13 s from spawn to listening at a load average of 10, over 30 s
 * at 20. Whether the process is alive is checked all along, so one that cannot start is reported
 * at once, with its log.
 */
export const RIG_START_TIMEOUT_MS = 90_000;

/**
 * How long a freshly started proxy may take to serve its first config from a control plane: the
 * first response makes it parse the Envoy protos (~0.5 s of CPU), a sidecar also gets its
 * certificate, and the control plane computes and signs for every proxy starting with it. Seen:
 * up to 13 s at a load average of 13, over 20 s at 20.
 */
export const FIRST_CONFIG_TIMEOUT_MS = 60_000;

export interface RigProxy {
  process: ChildProcess;
  /** What the proxy logged so far (stderr). */
  log(): string;
  /** What it wrote to stdout so far (stdout access logs). */
  stdout(): string;
  /**
   * Resolves with its ports once the proxy listens (its ports file is written), before any config
   * from a control plane; rejects with its log if it exits first. Wait for this before a readiness
   * check of its own, so that the check's timeout covers the config, not the process start-up.
   */
  started(): Promise<ProxyPorts>;
}

/** The ports file of a proxy started from a bootstrap file. */
export interface ProxyPorts {
  admin: number;
  ready: number;
  stats: number;
  /** Bound port by listener name. */
  listeners: Record<string, number>;
}

export interface RigProxyOptions {
  /** The control plane's plaintext xDS port. */
  xdsPort: number;
  /** Where the workload certificate comes from: the CA's TLS port, the root to trust and the bootstrap token. */
  ca?: { port: number; rootFile: string; tokenFile: string };
  /** Sees every chunk the proxy logs. */
  onLog?: (chunk: Buffer) => void;
  /** Extra environment of the proxy process (e.g. ISTIO_META_* node metadata). */
  env?: NodeJS.ProcessEnv;
}

function spawnProxy(t: TestContext, args: string[], onLog?: (chunk: Buffer) => void, env?: NodeJS.ProcessEnv): RigProxy {
  const debug = process.env.RIG_TEST_DEBUG ? ['--log-level', 'debug'] : [];
  const given = args.indexOf('--ports-file');
  const portsFile = given >= 0 ? args[given + 1]! : path.join(tempDir(t, 'rig-proxy-'), 'ports.json');
  const portsArgs = given >= 0 ? [] : ['--ports-file', portsFile];
  const child = spawnRig(['proxy', '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', ...portsArgs, ...debug, ...args], env ? { env: { ...process.env, ...env } } : {});
  let log = '';
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
    onLog?.(d);
  });
  t.after(async () => {
    await stopProcess(child);
    if (process.env.RIG_TEST_DEBUG) process.stderr.write(log);
  });
  let started: Promise<ProxyPorts> | undefined;
  const whenStarted = () =>
    (started ??= waitForPortsFile(portsFile, RIG_START_TIMEOUT_MS, () => child.exitCode !== null || child.signalCode !== null).then(
      (ports) => ports as unknown as ProxyPorts,
      (err: Error) => {
        throw new Error(`rig proxy ${args.join(' ')}: ${err.message}\n${log}`);
      },
    ));
  return { process: child, log: () => log, stdout: () => stdout, started: whenStarted };
}

/** Starts `rig proxy --xds-address … [CA flags] …args`. */
export function startRigProxy(t: TestContext, args: string[], opts: RigProxyOptions): RigProxy {
  const caArgs = opts.ca ? ['--ca-address', `127.0.0.1:${opts.ca.port}`, '--ca-root-file', opts.ca.rootFile, '--token-file', opts.ca.tokenFile] : [];
  return spawnProxy(t, ['--xds-address', `127.0.0.1:${opts.xdsPort}`, ...caArgs, '--log-format', 'text', ...args], opts.onLog, opts.env);
}

/**
 * The sidecar of workload `name` in `namespace` (service account `name`, workload `<name>-0`,
 * label app=<name>) with a bootstrap token from the mesh CA; `args` add ports and the like.
 * Resolves once the process listens (see RigProxy.started); its config comes after.
 */
export async function startSidecar(t: TestContext, mesh: MeshControlPlane, sidecar: { namespace: string; name: string; args: string[]; onLog?: (chunk: Buffer) => void; env?: NodeJS.ProcessEnv }): Promise<RigProxy> {
  const { namespace, name } = sidecar;
  const tokenFile = await mesh.tokenFile(namespace, name);
  const workload = ['--namespace', namespace, '--service-account', name, '--workload-name', `${name}-0`, '--labels', `app=${name}`];
  const proxy = startRigProxy(t, [...workload, ...sidecar.args], { xdsPort: mesh.cp.ports.xds, ca: { port: mesh.caPort, rootFile: mesh.rootFile, tokenFile }, onLog: sidecar.onLog, env: sidecar.env });
  await proxy.started();
  return proxy;
}

/** Starts `rig proxy -c <configFile> …args` (ports file `ports.json` beside it) and resolves once it listens. */
export async function startRigProxyFromFile(t: TestContext, configFile: string, args: string[] = []): Promise<RigProxy & { ports: ProxyPorts }> {
  const proxy = spawnProxy(t, ['-c', configFile, '--ports-file', path.join(path.dirname(configFile), 'ports.json'), ...args]);
  return { ...proxy, ports: await proxy.started() };
}
