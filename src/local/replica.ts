// One workload replica: its application and its sidecar, each supervised. In explicit mode with
// the loopback ports the pair uses; with `--isolation netns` in its own pod (network namespace),
// the app on its own ports and the sidecar capturing its traffic. As a Kubernetes pod, the replica
// is an endpoint only while it is ready: its sidecar's agent runs the readiness probe and reports
// to the control plane, whose record is also the app's readiness shown here (CONTRACTS §3).
import { chownSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PortAllocator } from './ports.ts';
import { httpProbe, type Probe } from './probe.ts';
import { readPortsFile, removePortsFile } from './ports-file.ts';
import { netnsArgv, PROXY_UID, type Pod, type PodNetwork } from './netns/index.ts';
import { podSidecarArgs, sidecarArgs, sidecarNodeId, type ProxyCommon } from './proxy-args.ts';
import { appEcho } from './probe-echo.ts';
import { sidecarProbe } from './replica-probe.ts';
import { allocateReplicaPorts, releaseReplicaPorts, type ReplicaPorts } from './replica-ports.ts';
import type { EffectiveProxyConfig, ProxyConfigTarget } from './effective-proxy-config.ts';
import { proxyConfigEnv } from './effective-proxy-config.ts';
import type { ProxyStatsMatcher, ReplicaPlan } from './mesh-plan.ts';
import { proxyStatsEnv } from './proxy-stats-env.ts';
import { rigCommand } from './rig-command.ts';
import type { ProcessStatus, ProcessState } from './status.ts';
import { SupervisedProcess } from './supervised-process.ts';
import { commandExists, podEnv, resolveCommand, workloadEnv } from './workload-env.ts';

function removeFile(file: string): void {
  rmSync(file, { force: true });
}

/** The running app's pid, replaced atomically (the agent watches the file); unchanged content is not rewritten. */
function writePidFile(file: string, pid: number | undefined): void {
  if (pid === undefined) return;
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === String(pid)) return;
  writeFileSync(`${file}.tmp`, String(pid), { mode: 0o644 });
  renameSync(`${file}.tmp`, file);
}

export interface RuntimeContext {
  stateRoot: string;
  logFile(name: string): string;
  runFile(name: string): string;
  print(name: string): (line: string) => void;
  proxyCommon(portsFile: string, name: string, identity: { namespace: string; serviceAccount: string }): Promise<ProxyCommon>;
  /** MeshConfig defaultConfig.proxyStatsMatcher: the Envoy stats every proxy keeps beyond Istio's defaults. */
  meshProxyStatsMatcher?: ProxyStatsMatcher;
  /** The ProxyConfig a proxy starts with now (ProxyConfig resources, MeshConfig defaultConfig, the annotation). */
  proxyConfig(target: ProxyConfigTarget): EffectiveProxyConfig;
  /** Tells the user about a state change worth knowing (crash, failure). */
  notice(line: string, isError: boolean): void;
  /** `notice`, once per rig up for each `key`. */
  noticeOnce(key: string, line: string): void;
  /** The last health report of the sidecar with this node id (the control plane's record). */
  workloadHealth(nodeId: string): { healthy: boolean; message: string } | undefined;
  /** Takes that sidecar's workload out of the endpoints at once (it is stopping or has exited). */
  forgetWorkload(nodeId: string): void;
  /** A free loopback port, not handed out before. */
  allocatePort(): Promise<number>;
  onChange(): void;
  /** `--isolation netns`: every replica runs in its own pod of this network (redirect-mode sidecar). */
  network?: PodNetwork;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** Proxy output on the terminal: warnings and errors only (everything is in the log file). */
export function proxyEcho(line: string): boolean {
  if (!line.startsWith('{')) return true;
  try {
    return ((JSON.parse(line) as { level?: number }).level ?? 30) >= 40;
  } catch {
    return true;
  }
}

/** A JSON log line (pino) as one readable line: `WARN message key=value ...`. */
export function readableLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const { level, time: _t, pid: _p, hostname: _h, name: _n, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    return [LEVELS[level as number] ?? String(level), msg, ...extra].filter((x) => x !== undefined && x !== '').join(' ');
  } catch {
    return line;
  }
}

export function readable(print: (line: string) => void): (line: string) => void {
  return (line) => print(readableLogLine(line));
}

/** Ready when the proxy has written its ports file and answers /healthz/ready (at `host`: a pod's address). */
export function proxyReadiness(portsFile: string, host = '127.0.0.1'): Probe {
  return async () => {
    const ports = readPortsFile(portsFile);
    return ports?.ready ? httpProbe(host, ports.ready, '/healthz/ready')() : false;
  };
}

/** Status updates, and a line on the terminal when a process crashes, fails or recovers. */
export function watchState(p: SupervisedProcess, ctx: RuntimeContext): void {
  let wasDown = false;
  p.on('state', (state) => {
    ctx.onChange();
    if (state === 'crashed' || state === 'failed') {
      wasDown = true;
      ctx.notice(`${p.spec.name} ${state}: ${p.message ?? ''}${state === 'failed' ? ' — fix the Workload and save the file to retry' : ''}`, true);
    } else if (state === 'ready' && wasDown) {
      wasDown = false;
      ctx.notice(`${p.spec.name} is ready again (restarts: ${p.restarts})`, false);
    }
  });
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

export function combinedState(a: ProcessState, b: ProcessState): ProcessState {
  const order: ProcessState[] = ['failed', 'crashed', 'stopping', 'starting', 'stopped', 'ready'];
  return order.find((s) => a === s || b === s) ?? a;
}

export class ReplicaRuntime {
  readonly plan: ReplicaPlan;
  readonly ports: ReplicaPorts;
  readonly app: SupervisedProcess;
  readonly proxy: SupervisedProcess;
  readonly #proxyPortsFile: string;
  /** `--isolation netns`: the replica's pod. */
  readonly pod: Pod | undefined;
  readonly #ctx: RuntimeContext;
  /** The sidecar's node id: how the control plane knows this replica. */
  readonly nodeId: string;
  #stopping = false;

  private constructor(plan: ReplicaPlan, ports: ReplicaPorts, ctx: RuntimeContext, portsFile: string, pod: Pod | undefined) {
    this.plan = plan;
    this.ports = ports;
    this.#proxyPortsFile = portsFile;
    this.pod = pod;
    this.#ctx = ctx;
    this.nodeId = sidecarNodeId(plan, pod?.address ?? '127.0.0.1');
    // Ready while the sidecar's agent last reported the replica healthy; no probe (no ports): once running.
    const probe = sidecarProbe(plan.spec);
    const probed = probe !== undefined;
    const env = { ...(pod ? podEnv(plan, pod.address) : workloadEnv(plan, ports)), RIG_STATE_DIR: ctx.stateRoot };
    // The agent sees the app's process through this file (a dead app is unready at once, as a pod
    // whose container died) and runs exec probes in the app's environment (as in its container).
    const pidFile = ctx.runFile(`${plan.name}.app.pid`);
    const probeEnvFile = plan.spec.readinessProbe?.exec ? ctx.runFile(`${plan.name}.probe-env.json`) : undefined;
    const agentArgs = probed ? ['--workload-pid-file', pidFile, ...(probeEnvFile ? ['--probe-env-file', probeEnvFile] : [])] : [];
    const [command, ...args] = [...plan.spec.command, ...(plan.spec.args ?? [])];
    // In a pod the app runs unchanged on its own ports, through `ip netns exec` (which execs it).
    const [appCommand, ...appArgs] = pod ? netnsArgv(pod.netns, resolveCommand(command), args) : [resolveCommand(command), ...args];
    this.app = new SupervisedProcess({
      name: plan.name,
      command: appCommand,
      args: appArgs,
      env,
      cwd: plan.cwd,
      logFile: ctx.logFile(plan.name),
      print: ctx.print(plan.name),
      echo: appEcho(probe, () => ctx.noticeOnce('probe-echo', `readiness-probe requests in the apps' output (${plan.name}: GET ${probe?.httpGet?.path}) are not shown here; rig logs ${plan.workload} has them`)),
      readiness: probed ? async () => ctx.workloadHealth(this.nodeId)?.healthy === true : undefined,
      // The agent applies the probe's thresholds; this only reads its last report.
      periodMs: 200,
      failureThreshold: 1,
      beforeStart: async () => {
        removeFile(pidFile);
        if (plan.problem) throw new Error(plan.problem);
        if (pod && !commandExists(resolveCommand(command), plan.cwd, env)) throw new Error(`command "${command}" not found (in ${plan.cwd}, or on PATH)`);
      },
    });
    // The sidecar's flags need the control plane (its address, a bootstrap token from its CA):
    // they are made when the sidecar starts, so the app can start while the control plane does.
    const identity = { namespace: plan.namespace, serviceAccount: plan.serviceAccount };
    const proxy: SupervisedProcess = new SupervisedProcess({
      name: `${plan.name}/istio-proxy`,
      command: pod ? 'ip' : process.execPath,
      args: [],
      env: {},
      // In the workload's directory, where its exec probe runs (as a container's, in its files); the
      // pod's sidecar runs as the proxy user, which may not be able to enter the user's directory.
      cwd: pod ? path.dirname(portsFile) : isDirectory(plan.cwd) ? plan.cwd : process.cwd(),
      logFile: ctx.logFile(`${plan.name}.istio-proxy`),
      print: readable(ctx.print(`${plan.name}/proxy`)),
      // A stopping replica's sidecar reports its app gone (as it should): that stays in its log file.
      echo: (line) => !this.#stopping && proxyEcho(line),
      readiness: proxyReadiness(portsFile, pod?.address),
      beforeStart: async () => {
        removePortsFile(portsFile);
        // As Istio's injector, at each start: a ProxyConfig changed since applies from the next start on.
        const pc = ctx.proxyConfig({ namespace: plan.namespace, labels: plan.labels, annotation: { proxyMetadata: plan.proxyMetadata, concurrency: plan.proxyConcurrency } });
        proxy.spec.env = { ...process.env, ...proxyConfigEnv(pc, plan.name, ctx.noticeOnce), ...proxyStatsEnv(ctx.meshProxyStatsMatcher, plan.proxyStats), RIG_STATE_DIR: ctx.stateRoot };
        const common = await ctx.proxyCommon(portsFile, plan.name, identity);
        if (probeEnvFile) writeFileSync(probeEnvFile, JSON.stringify(env), { mode: 0o600 });
        if (!pod) {
          proxy.spec.args = rigCommand([...sidecarArgs(plan, ports, common), ...agentArgs]).args;
          return;
        }
        if (common.ca) chownSync(common.ca.tokenFile, PROXY_UID, PROXY_UID);
        if (probeEnvFile) chownSync(probeEnvFile, PROXY_UID, PROXY_UID);
        const rig = rigCommand([...podSidecarArgs(plan, pod.address, common), ...agentArgs]);
        proxy.spec.args = netnsArgv(pod.netns, rig.command, rig.args, { uid: PROXY_UID }).slice(1);
      },
    });
    this.proxy = proxy;
    // A sidecar that exited takes the replica out of the endpoints now, not after the control plane's grace period.
    proxy.on('exit', () => ctx.forgetWorkload(this.nodeId));
    if (probed) {
      this.app.on('state', () => writePidFile(pidFile, this.app.pid));
      this.app.on('exit', () => removeFile(pidFile));
    }
    for (const p of [this.app, this.proxy]) watchState(p, ctx);
  }

  static async create(plan: ReplicaPlan, allocator: PortAllocator, ctx: RuntimeContext): Promise<ReplicaRuntime> {
    const portsFile = ctx.runFile(`${plan.name}.proxy-ports.json`);
    if (!ctx.network) return new ReplicaRuntime(plan, await allocateReplicaPorts(plan, allocator), ctx, portsFile, undefined);
    const pod = await ctx.network.createPod(plan.workload, { replica: plan.index, namespace: plan.namespace });
    const own = Object.fromEntries((plan.spec.ports ?? []).map((p) => [p.port, p.port]));
    return new ReplicaRuntime(plan, { inbound: {}, app: own, outbound: 0, upstream: {} }, ctx, portsFile, pod);
  }

  async start(): Promise<void> {
    await Promise.all([this.proxy.start(), this.app.start()]);
  }

  /** As a terminating pod: out of the endpoints first, then the app, then its sidecar. */
  async stop(allocator: PortAllocator): Promise<void> {
    this.#stopping = true;
    this.#ctx.forgetWorkload(this.nodeId);
    await this.app.stop();
    await this.proxy.stop();
    removePortsFile(this.#proxyPortsFile);
    if (this.pod) await this.#ctx.network?.deletePod(this.pod);
    else releaseReplicaPorts(this.ports, allocator);
  }

  status(): ProcessStatus {
    const proxyPorts = readPortsFile(this.#proxyPortsFile) ?? {};
    const state = combinedState(this.app.state, this.proxy.state);
    const health = this.app.state === 'starting' ? this.#ctx.workloadHealth(this.nodeId) : undefined;
    const message = this.app.message && this.app.state !== 'starting' ? `app: ${this.app.message}` : this.proxy.message ? `sidecar: ${this.proxy.message}` : health?.healthy === false ? `not ready: ${health.message}` : undefined;
    return {
      name: this.plan.name,
      kind: 'workload',
      workload: this.plan.workload,
      namespace: this.plan.namespace,
      ...(this.pod ? { netns: this.pod.netns, address: this.pod.address } : {}),
      state,
      appState: this.app.state,
      proxyState: this.proxy.state,
      pid: this.app.pid,
      proxyPid: this.proxy.pid,
      restarts: this.app.restarts + this.proxy.restarts,
      message,
      ports: { inbound: this.ports.inbound, app: this.ports.app, outbound: this.ports.outbound, admin: proxyPorts.admin, stats: proxyPorts.stats ?? proxyPorts.admin, ready: proxyPorts.ready },
      logs: { app: `logs/${this.plan.name}.log`, proxy: `logs/${this.plan.name}.istio-proxy.log` },
      since: (this.app.since > this.proxy.since ? this.app.since : this.proxy.since).toISOString(),
    };
  }
}
