// `rig up`: a whole mesh on one machine. The control plane runs inside this process, fed by the
// watched configuration; every Workload replica runs as its app plus its sidecar, and the
// gateways as `rig proxy --mode router`. Workloads and gateways follow the configuration as it
// changes; the status file in the state directory tells other `rig` commands what runs where.
import path from 'node:path';
import pino from 'pino';
import { resourceKey, type Resource } from '../api/index.ts';
import { setLogSink, type Logger } from '../core/log.ts';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../model/mesh-config.ts';
import { chmodSync, chownSync, existsSync, writeFileSync } from 'node:fs';
import { attachCertificateAuthority, writeFileAtomic, type AttachedCa } from '../ca/index.ts';
import { startControlPlane, type ControlPlane } from '../xds/controlplane.ts';
import { appliedResources } from './applied-config.ts';
import { ConfigSources } from './config-sources.ts';
import { ControlPlaneLog } from './controlplane-log.ts';
import { effectiveProxyConfig } from './effective-proxy-config.ts';
import { GatewayRuntime } from './gateway.ts';
import { cleanupNetnsLeftovers, createPodNetwork, PROXY_UID, type PodNetwork } from './netns/index.ts';
import type { LogConsole } from './log-output.ts';
import { gatewayPlans, workloadReplicas, type GatewayPlan, type ReplicaPlan } from './mesh-plan.ts';
import { PortAllocator } from './ports.ts';
import type { ProxyCommon } from './proxy-args.ts';
import { reapLeftovers } from './reaper.ts';
import { ReplicaRuntime, type RuntimeContext } from './replica.ts';
import { isAlive, type StateDir } from './state-dir.ts';
import { overallState, type MeshStatus, type ProcessStatus } from './status.ts';
import { RigError } from '../core/errors.ts';

export interface UpOptions {
  paths: string[];
  stateDir: StateDir;
  console: LogConsole;
  /** Where Gateway servers are bound on the host (default 127.0.0.1). */
  gatewayBind?: string;
  /** Gateway server port → host port, for ports that must not be bound as declared. */
  gatewayPorts?: Record<string, number>;
  /** Run the ingress gateway even when no Gateway selects it yet (default true). */
  ingress?: boolean;
  /** xDS port of the control plane (default: any free port). */
  xdsPort?: number;
  /** Extra flags for every `rig proxy`. */
  proxyArgs?: string[];
  /** `credentialName` secrets as <dir>/<name>/{tls.crt,tls.key,ca.crt} (default: <state-dir>/controlplane/credentials). */
  credentialsDir?: string;
  /** Istio's MeshConfig (outboundTrafficPolicy, tracing sampling...). */
  mesh?: MeshConfig;
  /** explicit (default): HTTP_PROXY and loopback ports; netns: a network namespace per replica (Linux, root). */
  isolation?: 'explicit' | 'netns';
  /** Prefix of the pods' network namespace names (default `rig`). */
  netnsPrefix?: string;
}

export class Supervisor {
  readonly opts: UpOptions;
  readonly startedAt = new Date();
  readyAt: Date | undefined;
  readonly #allocator = new PortAllocator();
  readonly #replicas = new Map<string, ReplicaRuntime>();
  readonly #gateways = new Map<string, { rt: GatewayRuntime; fingerprint: string }>();
  /** Keys of the one-time notices already shown. */
  readonly #noticed = new Set<string>();
  #config: ConfigSources | undefined;
  #cp: ControlPlane | undefined;
  #cpLog: Logger | undefined;
  #cpOutput: ControlPlaneLog | undefined;
  #ca: AttachedCa | undefined;
  #caRootFile = '';
  #cpReady: Promise<void> = Promise.resolve();
  #configErrors: string[] = [];
  #statusTimer: NodeJS.Timeout | undefined;
  #reconciling: Promise<void> = Promise.resolve();
  #stopping = false;
  #readyWaiters: (() => void)[] = [];
  #network: PodNetwork | undefined;
  /** The ProxyConfig resources of the last reconcile, to say when they change. */
  #proxyConfigs: string | undefined;

  constructor(opts: UpOptions) {
    this.opts = opts;
  }

  get #bind(): string {
    return this.opts.gatewayBind ?? '127.0.0.1';
  }

  /** Where the control plane and CA listen: the pod bridge's address when pods must reach them. */
  get #cpHost(): string {
    return this.#network?.gateway ?? '127.0.0.1';
  }

  async start(): Promise<void> {
    const sd = this.opts.stateDir;
    const previous = sd.readStatus();
    if (previous && isAlive(previous.pid) && previous.pid !== process.pid) {
      throw new RigError('MESH_ERR_UNAVAILABLE', `a local mesh is already running from ${sd.root} (rig up, pid ${previous.pid}); stop it with \`rig down\` or use another --state-dir`);
    }
    sd.ensure();
    const reaped = await reapLeftovers(sd.root);
    if (reaped) this.opts.console.info(`stopped ${reaped} process(es) left running by an earlier rig up that did not exit cleanly`);
    if (this.opts.isolation === 'netns') await this.#startPodNetwork();

    const applied = appliedResources(sd.appliedDir);
    this.#config = await ConfigSources.open(this.opts.paths, sd.appliedDir);
    this.#reportProblems(this.#config.problems());
    this.#config.onProblems((p) => this.#reportProblems(p));

    // The control plane starts while the apps do; sidecars and gateways wait for it (#proxyCommon).
    this.#cpReady = this.#startControlPlane();
    this.#cpReady.catch(() => undefined);
    this.#config.store.onChange(() => this.#scheduleReconcile());
    const reconciled = this.#scheduleReconcile();
    await this.#cpReady;
    this.#writeStatus();
    await reconciled;
    // Kept from an earlier run as a cluster keeps its objects: say so, or a fresh `rig demo` silently
    // routes as before. (Said once every process's name is known, so that the columns line up.)
    if (applied.length) this.opts.console.info(`${applied.length} resource(s) applied with rig apply before this start are in force: ${applied.join(', ')} (rig delete -f removes them; another --state-dir starts without)`);
  }

  async #startPodNetwork(): Promise<void> {
    const nsPrefix = this.opts.netnsPrefix ?? 'rig';
    const left = await cleanupNetnsLeftovers({ nsPrefix });
    if (left.namespaces.length + left.links.length) this.opts.console.info(`removed pods and links left by an earlier rig up: ${[...left.namespaces, ...left.links].join(', ')}`);
    this.#network = await createPodNetwork({ nsPrefix });
    // The sidecars run as the proxy user: they reach the state directory and write their ports files in run/.
    chmodSync(this.opts.stateDir.root, 0o755);
    chownSync(this.opts.stateDir.runDir, PROXY_UID, PROXY_UID);
    this.opts.console.info(`pod network: bridge ${this.#network.bridge}, ${this.#network.subnet}, gateway ${this.#network.gateway}`);
  }

  async #startControlPlane(): Promise<void> {
    const sd = this.opts.stateDir;
    this.#cpOutput = new ControlPlaneLog(sd.logFile('controlplane'), this.opts.console.writer('controlplane'));
    // The control plane's components that log on their own (JWKS fetches, config warnings) too.
    setLogSink(this.#cpOutput);
    this.#config!.store.onChange(() => this.#cpOutput?.configChanged());
    this.#cpLog = pino({ level: process.env.RIG_LOG_LEVEL ?? 'info', name: 'controlplane' }, this.#cpOutput);
    this.#cp = await startControlPlane({ store: this.#config!.store, stateDir: sd.controlPlaneDir, credentialsDir: this.opts.credentialsDir, mesh: this.opts.mesh, host: this.#cpHost, xdsPort: this.opts.xdsPort ?? 0, monitoringPort: 0, log: this.#cpLog });
    // Istio's plug-in CA is the istio-system secret `cacerts`; here that secret of the credentials directory.
    const cacerts = path.join(this.opts.credentialsDir ?? path.join(sd.controlPlaneDir, 'credentials'), 'cacerts');
    const pluginCaDir = existsSync(cacerts) ? cacerts : undefined;
    this.#ca = await attachCertificateAuthority(this.#cp, { stateDir: sd.controlPlaneDir, tlsPort: 0, trustDomain: this.opts.mesh?.trustDomain, pluginCaDir, log: this.#cpLog });
    this.#caRootFile = path.join(sd.runDir, 'root-cert.pem');
    // The proxies read this file to trust the CA and renew at once when it changes: a root rotation
    // reaches them with both roots during the overlap.
    const writeRoots = (pem: string) => writeFileAtomic(this.#caRootFile, pem, 0o644);
    writeRoots(this.#ca.ca.trustBundlePem());
    this.#ca.ca.onRootsChanged(writeRoots);
    const h = this.#cpHost;
    this.opts.console.info(`control plane: xDS on ${h}:${this.#cp.ports.xds}, CA on ${h}:${this.#ca.tlsPort}${pluginCaDir ? ` (plug-in CA ${pluginCaDir})` : ''}, monitoring on http://${h}:${this.#cp.ports.monitoring}`);
  }

  #reportProblems(problems: string[]): void {
    const errors = problems.filter((p) => / Error \[/.test(p));
    if (errors.length) {
      this.opts.console.error(`configuration has ${errors.length} error(s); the last valid configuration of those files stays in force:`);
      for (const p of errors) this.opts.console.error(`  ${p}`);
    } else if (this.#configErrors.length) {
      this.opts.console.info('configuration problems resolved');
    }
    this.#configErrors = errors;
    this.#scheduleStatus();
  }

  #context(): RuntimeContext {
    const sd = this.opts.stateDir;
    return {
      stateRoot: sd.root,
      logFile: (name) => sd.logFile(name),
      runFile: (name) => path.join(sd.runDir, name),
      print: (name) => this.opts.console.writer(name),
      proxyCommon: async (portsFile, name, identity) => this.#proxyCommon(portsFile, name, identity),
      meshProxyStatsMatcher: this.opts.mesh?.defaultConfig.proxyStatsMatcher,
      proxyConfig: (target) => effectiveProxyConfig(this.#config?.store.list() ?? [], target, { rootNamespace: this.opts.mesh?.rootNamespace ?? DEFAULT_MESH_CONFIG.rootNamespace, defaultConfig: this.opts.mesh?.defaultConfig }),
      workloadHealth: (nodeId) => this.#cp?.discovery.workloadHealth(nodeId),
      forgetWorkload: (nodeId) => this.#cp?.discovery.forgetWorkload(nodeId),
      allocatePort: () => this.#allocator.allocate(),
      notice: (line, isError) => (isError ? this.opts.console.error(line) : this.opts.console.info(line)),
      noticeOnce: (key, line) => {
        if (this.#noticed.has(key)) return;
        this.#noticed.add(key);
        this.opts.console.info(line);
      },
      onChange: () => this.#onProcessChange(),
      network: this.#network,
    };
  }

  /** Every proxy gets a bootstrap token for its identity, with which it asks the CA for its certificate. */
  async #proxyCommon(portsFile: string, name: string, identity: { namespace: string; serviceAccount: string }): Promise<ProxyCommon> {
    await this.#cpReady;
    const tokenFile = path.join(this.opts.stateDir.runDir, `${name}.token`);
    const issued = await this.#ca!.tokens.issue({ ...identity, trustDomain: this.opts.mesh?.trustDomain, ttlSeconds: 7 * 24 * 3600 });
    writeFileSync(tokenFile, issued.token, { mode: 0o600 });
    return {
      xdsAddress: `${this.#cpHost}:${this.#cp!.ports.xds}`,
      portsFile,
      ca: { address: `${this.#cpHost}:${this.#ca!.tlsPort}`, rootFile: this.#caRootFile, tokenFile, trustDomain: this.opts.mesh?.trustDomain },
      extra: this.opts.proxyArgs,
    };
  }

  #scheduleReconcile(): Promise<void> {
    this.#reconciling = this.#reconciling.then(() => this.#reconcile()).catch((err: unknown) => this.opts.console.error(`reconcile failed: ${(err as Error).stack ?? err}`));
    return this.#reconciling;
  }

  /** Makes the running replicas and gateways match the configuration. */
  async #reconcile(): Promise<void> {
    if (this.#stopping || !this.#config) return;
    const resources: Resource[] = this.#config.store.list();
    this.#noticeProxyConfigChange(resources);
    const desired = new Map<string, ReplicaPlan>(workloadReplicas(resources).map((r) => [r.name, r]));
    const gateways = new Map<string, GatewayPlan>(gatewayPlans(resources, { ingress: this.opts.ingress ?? true }).map((g) => [g.name, g]));
    const ctx = this.#context();
    const stops: Promise<void>[] = [];
    for (const [name, rt] of this.#replicas) {
      const want = desired.get(name);
      if (!want || want.fingerprint !== rt.plan.fingerprint) {
        this.opts.console.info(`${want ? 'restarting' : 'stopping'} ${name}${want ? ' (its Workload changed)' : ''}`);
        this.#replicas.delete(name);
        stops.push(rt.stop(this.#allocator));
      }
    }
    for (const [name, g] of this.#gateways) {
      const want = gateways.get(name);
      if (!want || GatewayRuntime.fingerprint(want) !== g.fingerprint) {
        this.#gateways.delete(name);
        stops.push(g.rt.stop());
      }
    }
    await Promise.all(stops);
    const starts: Promise<void>[] = [];
    for (const [name, plan] of desired) {
      if (this.#replicas.has(name)) continue;
      const rt = await ReplicaRuntime.create(plan, this.#allocator, ctx);
      this.#replicas.set(name, rt);
      starts.push(rt.start());
    }
    for (const [name, plan] of gateways) {
      if (this.#gateways.has(name)) continue;
      const taken = new Map([...this.#gateways.entries()].flatMap(([other, g]) => Object.values(g.rt.hostPorts).map((hp) => [hp, other] as const)));
      const rt = await GatewayRuntime.create(plan, this.#bind, this.opts.gatewayPorts ?? {}, ctx, taken);
      this.#gateways.set(name, { rt, fingerprint: GatewayRuntime.fingerprint(plan) });
      starts.push(
        rt.start(this.#bind).then((problem) => {
          if (problem) this.opts.console.error(problem);
        }),
      );
    }
    await Promise.all(starts);
    this.#onProcessChange();
  }

  /** Proxies read their ProxyConfig when they start (effective-proxy-config.ts): a change waits for their next start. */
  #noticeProxyConfigChange(resources: readonly Resource[]): void {
    const now = JSON.stringify(resources.filter((r) => r.kind === 'ProxyConfig').map((r) => [resourceKey(r), r.spec]));
    if (this.#proxyConfigs !== undefined && now !== this.#proxyConfigs) this.opts.console.info('ProxyConfig changed: each sidecar and gateway applies it at its next start; running ones keep theirs (as pods in Istio until they restart)');
    this.#proxyConfigs = now;
  }

  #onProcessChange(): void {
    this.#scheduleStatus();
    if (!this.readyAt && this.#replicas.size + this.#gateways.size > 0 && overallState(this.processes()) === 'ready') {
      this.readyAt = new Date();
      for (const w of this.#readyWaiters.splice(0)) w();
    }
  }

  /** Resolves the first time every process is ready. */
  whenReady(): Promise<void> {
    if (this.readyAt) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  processes(): ProcessStatus[] {
    return [...[...this.#gateways.values()].map((g) => g.rt.status()), ...[...this.#replicas.values()].map((r) => r.status())].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  status(): MeshStatus {
    return {
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      readyAt: this.readyAt?.toISOString(),
      cwd: process.cwd(),
      configPaths: this.opts.paths.map((p) => path.resolve(p)),
      appliedDir: this.opts.stateDir.appliedDir,
      controlPlane: this.#cp ? { xdsAddress: `${this.#cpHost}:${this.#cp.ports.xds}`, monitoringPort: this.#cp.ports.monitoring } : undefined,
      gatewayBind: this.#bind,
      isolation: this.opts.isolation ?? 'explicit',
      processes: this.processes(),
      configErrors: this.#configErrors,
    };
  }

  #scheduleStatus(): void {
    if (this.#statusTimer || this.#stopping) return;
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = undefined;
      this.#writeStatus();
    }, 50);
  }

  #writeStatus(): void {
    if (this.#stopping) return;
    try {
      this.opts.stateDir.writeStatus(this.status());
    } catch (err) {
      this.opts.console.error(`cannot write the status file: ${(err as Error).message}`);
    }
  }

  /** Stops every process (apps first, then sidecars and gateways), then the control plane. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#cpOutput?.stopping();
    clearTimeout(this.#statusTimer);
    await this.#reconciling;
    await Promise.all([...[...this.#replicas.values()].map((r) => r.stop(this.#allocator)), ...[...this.#gateways.values()].map((g) => g.rt.stop())]);
    this.#replicas.clear();
    this.#gateways.clear();
    await this.#cp?.stop();
    this.#ca?.ca.close();
    await this.#network?.destroy();
    await this.#config?.close();
    this.#cpLog?.flush();
    setLogSink(undefined);
    this.#cpOutput?.close();
    this.opts.stateDir.removeStatus(process.pid);
  }
}
