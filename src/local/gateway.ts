// An ingress or egress gateway: `rig proxy --mode router` labelled as Istio's gateways are, so
// that Istio's own Gateway resources select it. Its Gateway servers are bound on the host at
// `bind`, each declared port P on hostPorts[P] (P itself unless remapped, e.g. for tests).
import { checkPortFree } from './ports.ts';
import { allOf, tcpProbe } from './probe.ts';
import { removePortsFile, readPortsFile } from './ports-file.ts';
import { gatewayArgs } from './proxy-args.ts';
import type { GatewayPlan } from './mesh-plan.ts';
import { proxyConfigEnv } from './effective-proxy-config.ts';
import { proxyStatsEnv } from './proxy-stats-env.ts';
import { proxyEcho, proxyReadiness, readable, watchState, type RuntimeContext } from './replica.ts';
import { rigCommand } from './rig-command.ts';
import type { ProcessStatus } from './status.ts';
import { SupervisedProcess } from './supervised-process.ts';

export class GatewayRuntime {
  readonly plan: GatewayPlan;
  readonly hostPorts: Record<string, number>;
  readonly process: SupervisedProcess;
  readonly #portsFile: string;
  #problem: string | undefined;

  private constructor(plan: GatewayPlan, hostPorts: Record<string, number>, process_: SupervisedProcess, portsFile: string) {
    this.plan = plan;
    this.hostPorts = hostPorts;
    this.process = process_;
    this.#portsFile = portsFile;
  }

  /** A fingerprint of what requires restarting the gateway when it changes (its ports). */
  static fingerprint(plan: GatewayPlan): string {
    return plan.ports.join(',');
  }

  /** `taken`: the host ports the mesh's other gateways hold, by port, with the gateway's name. */
  static async create(plan: GatewayPlan, bind: string, remap: Record<string, number>, ctx: RuntimeContext, taken: ReadonlyMap<number, string> = new Map()): Promise<GatewayRuntime> {
    const hostPorts: Record<string, number> = {};
    const root = process.getuid?.() === 0;
    for (const p of plan.ports) {
      if (remap[p] !== undefined && remap[p] !== 0 && taken.has(remap[p])) {
        // --gateway-port applies to every gateway with that port; the first one takes it (two Gateway API Gateways on 80, say).
        hostPorts[p] = await ctx.allocatePort();
        ctx.notice(`${plan.name}: Gateway server port ${p} is bound on ${bind}:${hostPorts[p]} (${taken.get(remap[p])} has ${remap[p]}, the host port --gateway-port gives ${p})`, false);
      } else if (remap[p] !== undefined) hostPorts[p] = remap[p] === 0 ? await ctx.allocatePort() : remap[p];
      else if (p < 1024 && !root) {
        // Istio's examples use 80 and 443, which only root may bind: take a free port and say so.
        hostPorts[p] = await ctx.allocatePort();
        ctx.notice(`${plan.name}: Gateway server port ${p} is bound on ${bind}:${hostPorts[p]} (ports below 1024 need root; choose one with --gateway-port ${p}=PORT)`, false);
      } else if (taken.has(p)) {
        // Two gateways of one mesh share this host, not their ports (Istio's egress tasks use 80 as the ingress does).
        hostPorts[p] = await ctx.allocatePort();
        ctx.notice(`${plan.name}: Gateway server port ${p} is bound on ${bind}:${hostPorts[p]} (${taken.get(p)} has ${p}); sidecars reach it through its Service as before`, false);
      } else hostPorts[p] = p;
    }
    const portsFile = ctx.runFile(`${plan.name}.proxy-ports.json`);
    const identity = { namespace: plan.namespace, serviceAccount: plan.serviceAccount };
    const proc: SupervisedProcess = new SupervisedProcess({
      name: plan.name,
      command: process.execPath,
      args: [],
      env: {},
      cwd: process.cwd(),
      logFile: ctx.logFile(plan.name),
      print: readable(ctx.print(plan.name)),
      echo: proxyEcho,
      // Ready once its Gateway servers listen (the proxy itself is ready before its config arrives).
      readiness: allOf([proxyReadiness(portsFile), ...Object.values(hostPorts).map((p) => tcpProbe(bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind, p))]),
      beforeStart: async () => {
        removePortsFile(portsFile);
        const pc = ctx.proxyConfig({ namespace: plan.namespace, labels: plan.labels });
        proc.spec.env = { ...process.env, ...proxyConfigEnv(pc, plan.name, ctx.noticeOnce), ...proxyStatsEnv(ctx.meshProxyStatsMatcher), RIG_STATE_DIR: ctx.stateRoot };
        proc.spec.args = rigCommand(gatewayArgs(plan, bind, hostPorts, await ctx.proxyCommon(portsFile, plan.name, identity))).args;
      },
    });
    const gw = new GatewayRuntime(plan, hostPorts, proc, portsFile);
    watchState(proc, ctx);
    return gw;
  }

  /** Checks that every host port is free first, so that a port in use is reported as such. */
  async start(bind: string): Promise<string | undefined> {
    const problems: string[] = [];
    for (const [port, hostPort] of Object.entries(this.hostPorts)) {
      await checkPortFree(bind, hostPort, `${this.plan.name}: Gateway server port ${port}`).catch((err: Error) => problems.push(`${err.message} (e.g. --gateway-port ${port}=${Number(port) + 10000 <= 65535 ? Number(port) + 10000 : 0})`));
    }
    this.#problem = problems.length ? problems.join('; ') : undefined;
    await this.process.start();
    return this.#problem;
  }

  async stop(): Promise<void> {
    await this.process.stop();
    removePortsFile(this.#portsFile);
  }

  status(): ProcessStatus {
    const ports = readPortsFile(this.#portsFile) ?? {};
    return {
      name: this.plan.name,
      kind: 'gateway',
      namespace: this.plan.namespace,
      state: this.process.state,
      pid: this.process.pid,
      proxyPid: this.process.pid,
      restarts: this.process.restarts,
      message: this.process.message ?? this.#problem,
      ports: { gateway: this.hostPorts, admin: ports.admin, stats: ports.stats ?? ports.admin, ready: ports.ready },
      logs: { proxy: `logs/${this.plan.name}.log` },
      since: this.process.since.toISOString(),
    };
  }
}
