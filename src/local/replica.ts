// One workload replica: its application and its sidecar, each supervised. In explicit mode with
// the loopback ports the pair uses; with `--isolation netns` in its own pod (network namespace),
// the app on its own ports and the sidecar capturing its traffic. The replica is ready when both are.
import path from 'node:path';
import type { PortAllocator } from './ports.ts';
import { httpProbe, tcpProbe, type Probe } from './probe.ts';
import { readPortsFile, removePortsFile } from './ports-file.ts';
import { chownSync } from 'node:fs';
import { netnsArgv, PROXY_UID, type Pod, type PodNetwork } from './netns/index.ts';
import { podSidecarArgs, sidecarArgs, type ProxyCommon } from './proxy-args.ts';
import { allocateReplicaPorts, releaseReplicaPorts, type ReplicaPorts } from './replica-ports.ts';
import type { ReplicaPlan } from './mesh-plan.ts';
import { rigCommand } from './rig-command.ts';
import type { ProcessStatus, ProcessState } from './status.ts';
import { SupervisedProcess } from './supervised-process.ts';
import { commandExists, podEnv, resolveCommand, workloadEnv } from './workload-env.ts';

export interface RuntimeContext {
  stateRoot: string;
  logFile(name: string): string;
  runFile(name: string): string;
  print(name: string): (line: string) => void;
  proxyCommon(portsFile: string, name: string, identity: { namespace: string; serviceAccount: string }): Promise<ProxyCommon>;
  /** Tells the user about a state change worth knowing (crash, failure). */
  notice(line: string, isError: boolean): void;
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
  /** `--isolation netns`: the replica's pod and its network. */
  readonly pod: Pod | undefined;
  readonly #network: PodNetwork | undefined;

  private constructor(plan: ReplicaPlan, ports: ReplicaPorts, ctx: RuntimeContext, portsFile: string, pod: Pod | undefined) {
    this.plan = plan;
    this.ports = ports;
    this.#proxyPortsFile = portsFile;
    this.pod = pod;
    this.#network = pod ? ctx.network : undefined;
    const env = { ...(pod ? podEnv(plan, pod.address) : workloadEnv(plan, ports)), RIG_STATE_DIR: ctx.stateRoot };
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
      readiness: this.#appProbe(),
      periodMs: (plan.spec.readinessProbe?.periodSeconds ?? 1) * 1000,
      failureThreshold: plan.spec.readinessProbe?.failureThreshold,
      beforeStart: async () => {
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
      env: { ...process.env, RIG_STATE_DIR: ctx.stateRoot },
      // The pod's sidecar runs as the proxy user, which may not be able to enter the user's directory.
      cwd: pod ? path.dirname(portsFile) : process.cwd(),
      logFile: ctx.logFile(`${plan.name}.istio-proxy`),
      print: readable(ctx.print(`${plan.name}/proxy`)),
      echo: proxyEcho,
      readiness: proxyReadiness(portsFile, pod?.address),
      beforeStart: async () => {
        removePortsFile(portsFile);
        const common = await ctx.proxyCommon(portsFile, plan.name, identity);
        if (!pod) {
          proxy.spec.args = rigCommand(sidecarArgs(plan, ports, common)).args;
          return;
        }
        if (common.ca) chownSync(common.ca.tokenFile, PROXY_UID, PROXY_UID);
        const rig = rigCommand(podSidecarArgs(plan, pod.address, common));
        proxy.spec.args = netnsArgv(pod.netns, rig.command, rig.args, { uid: PROXY_UID }).slice(1);
      },
    });
    this.proxy = proxy;
    for (const p of [this.app, this.proxy]) watchState(p, ctx);
  }

  static async create(plan: ReplicaPlan, allocator: PortAllocator, ctx: RuntimeContext): Promise<ReplicaRuntime> {
    const portsFile = ctx.runFile(`${plan.name}.proxy-ports.json`);
    if (!ctx.network) return new ReplicaRuntime(plan, await allocateReplicaPorts(plan, allocator), ctx, portsFile, undefined);
    const pod = await ctx.network.createPod(plan.workload, { replica: plan.index, namespace: plan.namespace });
    const own = Object.fromEntries((plan.spec.ports ?? []).map((p) => [p.port, p.port]));
    return new ReplicaRuntime(plan, { inbound: {}, app: own, outbound: 0, upstream: {} }, ctx, portsFile, pod);
  }

  // A pod's app is probed on the pod's address from the pod network's prober address, which the
  // pod's capture rules let through to the app (the sidecar would refuse plaintext under STRICT mTLS).
  #appProbe(): Probe | undefined {
    const rp = this.plan.spec.readinessProbe;
    const host = this.pod?.address ?? '127.0.0.1';
    const from = this.pod ? this.#network?.prober : undefined;
    const toApp = (port: number) => this.ports.app[port] ?? port;
    const timeout = (rp?.timeoutSeconds ?? 1) * 1000;
    if (rp?.httpGet) return httpProbe(host, toApp(rp.httpGet.port), rp.httpGet.path, timeout, from);
    if (rp?.tcpSocket) return tcpProbe(host, toApp(rp.tcpSocket.port), timeout, from);
    const first = this.plan.spec.ports?.[0];
    return first ? tcpProbe(host, toApp(first.port), 1000, from) : undefined;
  }

  async start(): Promise<void> {
    await Promise.all([this.proxy.start(), this.app.start()]);
  }

  async stop(allocator: PortAllocator): Promise<void> {
    await this.app.stop();
    await this.proxy.stop();
    removePortsFile(this.#proxyPortsFile);
    if (this.pod) await this.#network?.deletePod(this.pod);
    else releaseReplicaPorts(this.ports, allocator);
  }

  status(): ProcessStatus {
    const proxyPorts = readPortsFile(this.#proxyPortsFile) ?? {};
    const state = combinedState(this.app.state, this.proxy.state);
    const message = this.app.message ? `app: ${this.app.message}` : this.proxy.message ? `sidecar: ${this.proxy.message}` : undefined;
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
