// A transparent-interception mesh for tests: a control plane on the pod bridge, pods with
// redirect-mode sidecars (`rig proxy --interception redirect`, UID 1337) and unchanged apps.
// Everything (processes, namespaces, bridge, files) is removed after the test, also on failure.
import type { ChildProcess } from 'node:child_process';
import pino from 'pino';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { PROXY_UID, type Pod, type PodNetwork, type CreatePodOptions } from '../../src/local/netns/index.ts';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { attachCertificateAuthority } from '../../src/ca/index.ts';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../../src/model/mesh-config.ts';
import { openConfigStore } from '../../src/xds/config-source.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import type { RunResult } from '../../src/iptables/iptables-backend.ts';
import { RIG_MAIN } from '../helpers/cli.ts';
import { podNetwork } from './helpers.ts';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

export interface SidecarOptions {
  labels: string;
  /** Default: the workload name. */
  serviceAccount?: string;
  /** `--workload-port` values, e.g. `9080/http/HTTP`. */
  ports?: string[];
  /** A gateway (`--mode router`) instead of a sidecar, e.g. in a pod without capture rules. */
  router?: boolean;
}

export interface Mesh {
  readonly net: PodNetwork;
  /** The control plane's config directory (write Istio/Kubernetes YAML here). */
  readonly configDir: string;
  createPod(workload: string, opts?: CreatePodOptions): Promise<Pod>;
  /** Starts a process in a pod and waits for its first stdout line to be `ready`. */
  startApp(pod: Pod, args: string[]): Promise<ChildProcess>;
  /** Starts the pod's sidecar and waits until it listens. */
  startSidecar(pod: Pod, opts: SidecarOptions): Promise<void>;
  /** Runs a command in a pod (as root, like `kubectl exec`). */
  exec(pod: Pod, cmd: string, args: string[]): Promise<RunResult>;
  /** GETs a control plane debug path (e.g. `/debug/networkz`) as JSON. */
  debug(path: string): Promise<unknown>;
  /** The sidecar's Envoy stats (admin /stats), as name → value. */
  stats(pod: Pod): Promise<Map<string, string>>;
  /** The tail of a sidecar's (or `controlplane`'s) log, for assertion messages. */
  log(name: string): string;
  /**
   * Kills the pods' processes (waiting until they are gone) and stops the control plane: before
   * `net.destroy()`, or the control plane keeps connections whose peers' FIN can no longer arrive.
   * Also runs when the test ends.
   */
  stop(): Promise<void>;
}

export async function startMesh(t: TestContext, tag: string, config: Record<string, string>, opts: { mesh?: Partial<MeshConfig> } = {}): Promise<Mesh> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `rig-mesh-${tag}-`));
  chmodSync(dir, 0o755);
  const configDir = path.join(dir, 'config');
  mkdirSync(configDir);
  for (const [file, text] of Object.entries(config)) writeFileSync(path.join(configDir, file), text);
  // The sidecars run as the proxy user and write their ports files and logs here.
  const runDir = path.join(dir, 'run');
  mkdirSync(runDir);
  chownSync(runDir, PROXY_UID, PROXY_UID);
  // Hooks run in order: processes and the control plane go before the pod network (a connection
  // into a deleted namespace would never see its peer close).
  const procs: ChildProcess[] = [];
  const stops: (() => unknown)[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await Promise.all(procs.map((p) => {
        p.stdout?.destroy();
        p.stderr?.destroy();
        if (p.exitCode !== null || p.signalCode !== null) return undefined;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        return exited;
      }));
      for (const s of stops.reverse()) await s();
    })());
  t.after(stop);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const net = await podNetwork(t, tag);
  const logFile = (name: string) => path.join(runDir, `${name}.log`);

  // The control plane (with its CA: sidecars get SPIFFE certificates, so mutual TLS is on) listens
  // on the bridge address: the only host address pods can reach.
  const cpLog = pino({ level: 'info', name: 'controlplane' }, pino.destination({ dest: logFile('controlplane'), sync: true }));
  const store = await openConfigStore(configDir, cpLog);
  stops.push(() => store.close());
  const cp = await startControlPlane({ store: store.store, mesh: { ...DEFAULT_MESH_CONFIG, ...opts.mesh }, stateDir: path.join(dir, 'state'), host: net.gateway, xdsPort: 0, monitoringPort: 0, log: cpLog, debounceMs: 20 });
  stops.push(() => cp.stop());
  const ca = await attachCertificateAuthority(cp, { stateDir: path.join(dir, 'state'), tlsPort: 0, log: cpLog });
  stops.push(() => ca.ca.close());
  const rootFile = path.join(runDir, 'root-cert.pem');
  writeFileSync(rootFile, ca.ca.trustBundlePem());

  const mesh: Mesh = {
    net,
    configDir,
    createPod: (workload, opts) => net.createPod(workload, opts),
    async startApp(pod, args) {
      const app = net.spawnInPod(pod, process.execPath, args);
      procs.push(app);
      const first = await readline.createInterface({ input: app.stdout! })[Symbol.asyncIterator]().next();
      if (first.value !== 'ready') throw new Error(`app ${args.join(' ')} in ${pod.netns} did not start`);
      return app;
    },
    async startSidecar(pod, opts) {
      const portsFile = path.join(runDir, `${pod.workload}.json`);
      const tokenFile = path.join(runDir, `${pod.workload}.token`);
      writeFileSync(tokenFile, (await ca.tokens.issue({ namespace: 'default', serviceAccount: opts.serviceAccount ?? pod.workload })).token, { mode: 0o600 });
      chownSync(tokenFile, PROXY_UID, PROXY_UID);
      const args = [RIG_MAIN, 'proxy', '--xds-address', `${net.gateway}:${cp.ports.xds}`, '--ca-address', `${net.gateway}:${ca.tlsPort}`, '--ca-root-file', rootFile, '--token-file', tokenFile, '--service-account', opts.serviceAccount ?? pod.workload, '--interception', 'redirect', '--instance-ip', pod.address, '--labels', opts.labels, '--workload-name', `${pod.workload}-${pod.replica}`, '--ports-file', portsFile, ...(opts.ports ?? []).flatMap((p) => ['--workload-port', p]), ...(opts.router ? ['--mode', 'router'] : [])];
      const fd = openSync(logFile(pod.workload), 'w', 0o644);
      // stats() reads cluster stats, which Istio's sidecars keep only when their ProxyConfig asks.
      const env = { ...process.env, PROXY_CONFIG: JSON.stringify({ proxyStatsMatcher: { inclusionPrefixes: ['cluster.'] } }) };
      const proxy = net.spawnInPod(pod, process.execPath, args, { uid: PROXY_UID, env, stdio: ['ignore', fd, fd] });
      procs.push(proxy);
      await waitForPortsFile(portsFile, 20_000, () => proxy.exitCode !== null);
    },
    exec: (pod, cmd, args) => net.execInPod(pod, cmd, args),
    debug: async (p) => (await fetch(`http://${net.gateway}:${cp.ports.monitoring}${p}`)).json(),
    async stats(pod) {
      const r = await net.execInPod(pod, 'curl', ['-sS', '-m', '5', 'http://127.0.0.1:15000/stats']);
      const m = new Map<string, string>();
      for (const line of r.stdout.split('\n')) {
        const i = line.indexOf(': ');
        if (i > 0) m.set(line.slice(0, i), line.slice(i + 2));
      }
      return m;
    },
    log(name) {
      try {
        return readFileSync(logFile(name), 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        return '';
      }
    },
    stop,
  };
  return mesh;
}
