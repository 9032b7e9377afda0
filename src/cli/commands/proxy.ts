// `rig proxy`: the data plane. From a static Envoy bootstrap (-c) or, with --xds-address, from a
// bootstrap built from the workload flags with ADS to the control plane (and workload certificates
// from the CA when --ca-root-file is given).
import fs from 'node:fs';
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { createLogger } from '../../core/log.ts';
import { readBootstrapFile, parseBootstrap } from '../../proxy/bootstrap/bootstrap.ts';
import { addXdsOptions, bootstrapFromOptions, identityFromOptions, type XdsCliOptions } from '../../proxy/bootstrap/flags.ts';
import { ProxyRuntime } from '../../proxy/runtime.ts';
import { prepareHttpFilters } from '../../proxy/filters/registry.ts';
import { ipVersionOfInstanceIps, setLocalAddressIpVersion, type IpVersion } from '../../proxy/local-address.ts';
import { trimHeap, trimHeapWhenReady } from '../../proxy/heap-trim.ts';
import { skipMaglev } from '../../proxy/jit-tiers.ts';
import { releaseEnvoyTypes, releaseEnvoyTypesWhenIdle } from '../../envoy/protos.ts';
import { releaseFreeMalloc, releaseFreeMallocEvery, trimCodeResidency, trimCodeResidencyEvery } from '../../proxy/resident-trim.ts';
import { createAdminHandler, createReadyHandler } from '../../proxy/admin/admin-server.ts';
import { LogLevels } from '../../proxy/admin/logging.ts';
import { listen } from '../../core/listen.ts';
import { http } from '../../proxy/node-http.ts';
import { CLUSTER_TYPE, LISTENER_TYPE, RUNTIME_TYPE, SECRET_TYPE, type EnvoyJson } from '../../envoy/index.ts';
import { parseDuration } from '../../envoy/wkt-json.ts';
import { createStatsHandler, flushSpans } from '../../proxy/telemetry/index.ts';
import { readinessProbeOf, ReadinessProbeError } from '../../proxy/workload-health/readiness-probe.ts';
import { AgentFileError, checkPidFile, readProbeEnv } from '../../proxy/workload-health/agent-files.ts';

interface ProxyOptions extends XdsCliOptions {
  config?: string;
  adminPort?: string;
  readyPort?: string;
  statsPort?: string;
  dnsPort?: string;
  portsFile?: string;
  drainTimeout: string;
  logLevel?: string;
  logFormat?: string;
  localAddressIpVersion?: string;
}

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new RigError('MESH_ERR_USAGE', `${flag}: "${v}" is not a port (0-65535; 0 picks a free one)`);
  return n;
}

export function define(cmd: Command): void {
  cmd
    .option('-c, --config <file>', 'Envoy v3 bootstrap (YAML or JSON)')
    .option('--admin-port <n>', 'admin port on 127.0.0.1 (default: the bootstrap admin address, else 15000; 0 = pick)')
    .option('--ready-port <n>', 'readiness port serving /healthz/ready (default 15021; 0 = pick)')
    .option('--stats-port <n>', 'Prometheus port serving /stats/prometheus (default 15090; 0 = pick)')
    .option('--dns-port <n>', 'REDIRECT mode: DNS proxy port on 127.0.0.1 answering from the control plane\'s name table (default 15053; 0 = pick)')
    .option('--ports-file <file>', 'write the bound ports as JSON once listening')
    .option('--drain-timeout <seconds>', 'on SIGTERM, how long in-flight requests may take', '5')
    .option('--log-level <level>', 'trace, debug, info, warn, error')
    .option('--log-format <format>', 'json or text', 'json')
    .option('--local-address-ip-version <v4|v6>', "Envoy's: the family of the proxy's own address (x-forwarded-for of its gRPC calls); default v6 when every --instance-ip is IPv6, else v4");
  addXdsOptions(cmd);
  cmd.action(async (opts: ProxyOptions) => run(opts));
}

/** A config source's initial_fetch_timeout in ms (checked as a Duration with the bootstrap; Envoy's default 15 s; 0 = for good). */
function initialFetchTimeoutMs(configSource: unknown): number {
  const v = (configSource as { initial_fetch_timeout?: unknown } | null)?.initial_fetch_timeout;
  if (typeof v !== 'string') return 15_000;
  const { seconds, nanos } = parseDuration(v);
  return Math.max(0, seconds * 1000 + nanos / 1e6);
}

function localAddressIpVersion(opts: ProxyOptions, metadata: EnvoyJson): IpVersion {
  const v = opts.localAddressIpVersion;
  if (v === 'v4' || v === 'v6') return v;
  if (v !== undefined) throw new RigError('MESH_ERR_USAGE', `--local-address-ip-version: "${v}" is not v4 or v6`);
  // As Istio's agent for a proxy built from flags; Envoy's own default (v4) for a bootstrap file.
  return opts.xdsAddress && typeof metadata.INSTANCE_IPS === 'string' ? ipVersionOfInstanceIps(metadata.INSTANCE_IPS) : 'v4';
}

async function run(opts: ProxyOptions): Promise<void> {
  skipMaglev();
  const log = createLogger({ level: opts.logLevel, format: opts.logFormat === 'text' ? 'text' : 'json', name: 'proxy' });
  const logLevels = new LogLevels(log);
  let raw: EnvoyJson;
  let source: string;
  if (opts.config && opts.xdsAddress) throw new RigError('MESH_ERR_USAGE', 'use either -c/--config or --xds-address, not both');
  if (opts.config) {
    raw = readBootstrapFile(opts.config);
    source = opts.config;
  } else if (opts.xdsAddress) {
    raw = bootstrapFromOptions(opts);
    source = '--xds-address flags';
  } else throw new RigError('MESH_ERR_USAGE', 'rig proxy needs -c <bootstrap.yaml> or --xds-address HOST:PORT');
  const bootstrap = parseBootstrap(raw, source);
  setLocalAddressIpVersion(localAddressIpVersion(opts, bootstrap.node.metadata));
  for (const w of bootstrap.warnings) log.warn(w);
  // The workload readiness probe (node metadata PROXY_CONFIG.readinessProbe): checked before anything starts.
  let probe: ReturnType<typeof readinessProbeOf>;
  try {
    probe = readinessProbeOf(bootstrap.node.metadata);
  } catch (err) {
    if (err instanceof ReadinessProbeError) throw new RigError('MESH_ERR_INVALID_CONFIG', `${source}: node metadata ${err.message}`);
    throw err;
  }
  let agentFiles: { pidFile?: string; execEnv?: NodeJS.ProcessEnv } = {};
  try {
    agentFiles = { pidFile: opts.workloadPidFile && checkPidFile(opts.workloadPidFile), execEnv: opts.probeEnvFile ? readProbeEnv(opts.probeEnvFile) : undefined };
  } catch (err) {
    if (err instanceof AgentFileError) throw new RigError('MESH_ERR_USAGE', err.message);
    throw err;
  }
  const rt = new ProxyRuntime({ node: bootstrap.node, log, runtimeLayers: bootstrap.runtimeLayers });
  rt.stats.configure(bootstrap.statsConfig);
  const staticText = JSON.stringify(bootstrap.staticResources);
  await prepareHttpFilters((typeUrl) => staticText.includes(typeUrl));
  const errors = rt.addStatic(bootstrap.staticResources);
  if (errors.length) throw new RigError('MESH_ERR_INVALID_CONFIG', `${source}: invalid static resources:\n` + errors.map((e) => '  ' + e).join('\n'));

  const adminPort = port(opts.adminPort, '--admin-port') ?? bootstrap.admin?.port ?? 15000;
  const adminHost = opts.adminPort !== undefined ? '127.0.0.1' : (bootstrap.admin?.address ?? '127.0.0.1');
  const readyPort = port(opts.readyPort, '--ready-port') ?? 15021;
  const statsPort = port(opts.statsPort, '--stats-port') ?? 15090;
  let quitting = false;
  const drainMs = Number(opts.drainTimeout) * 1000;
  if (!Number.isFinite(drainMs) || drainMs < 0) throw new RigError('MESH_ERR_USAGE', `--drain-timeout: "${opts.drainTimeout}" is not a number of seconds`);

  const admin = http.createServer(
    createAdminHandler({
      runtime: rt,
      bootstrap: raw,
      commandLine: process.argv.slice(2),
      onQuit: () => void shutdown('quitquitquit'),
      logLevels,
    }),
  );
  const ready = http.createServer(createReadyHandler(rt));
  const statsServer = http.createServer(createStatsHandler(rt.stats));
  const ports: Record<string, unknown> = {};
  try {
    ports.admin = await listen(admin, adminHost, adminPort);
    ports.ready = await listen(ready, '0.0.0.0', readyPort);
    ports.stats = await listen(statsServer, '0.0.0.0', statsPort);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new RigError(err.code === 'EADDRINUSE' ? 'MESH_ERR_PORT_IN_USE' : 'MESH_ERR_UNAVAILABLE', `cannot listen for admin/readiness/stats: ${err.message} (choose another with --admin-port / --ready-port / --stats-port, or 0)`);
  }

  const stoppers: (() => void)[] = [];
  // Istio's agent DNS: a sidecar that captures traffic (REDIRECT) also answers the pod's DNS.
  if (bootstrap.node.metadata.INTERCEPTION_MODE === 'REDIRECT') {
    const { startSidecarDns } = await import('../../proxy/dns/dns-sidecar.ts');
    const ns = bootstrap.node.metadata.NAMESPACE;
    const dnsPort = port(opts.dnsPort, '--dns-port') ?? 15053;
    try {
      const dns = await startSidecarDns(rt, { port: dnsPort, namespace: typeof ns === 'string' ? ns : undefined, logger: log.child({ component: 'dns' }) });
      ports.dns = dns.port;
      stoppers.push(() => void dns.close());
    } catch (e) {
      throw new RigError('MESH_ERR_PORT_IN_USE', `cannot start the DNS proxy: ${(e as Error).message} (choose another port with --dns-port, or 0)`);
    }
  }
  rt.stats.setFlushInterval(bootstrap.statsFlushIntervalMs);
  if (bootstrap.overload) {
    const { OverloadManager } = await import('../../proxy/overload/overload-manager.ts');
    const om = new OverloadManager(bootstrap.overload, rt.stats);
    rt.ctx.overload = om;
    om.start();
    stoppers.push(() => om.stop());
  }
  // RTDS layers from files (path_config_source): read now, again whenever their directory changes.
  const rtdsFiles = bootstrap.runtimeLayers.flatMap((l) => (l.kind === 'rtds' && l.file ? [{ key: `rtds_layer "${l.resource}"`, typeUrl: RUNTIME_TYPE, file: l.file.path, dir: l.file.dir }] : []));
  if (rtdsFiles.length) {
    const { PathSubscriptions } = await import('../../proxy/bootstrap/path-config-source.ts');
    const subs = new PathSubscriptions(rtdsFiles, rt, log);
    subs.start();
    stoppers.push(() => subs.stop());
  }
  const dynamic = (raw.dynamic_resources ?? {}) as Record<string, unknown>;
  if (bootstrap.dynamic) {
    for (const [key, typeUrl] of [['cds_config', CLUSTER_TYPE], ['lds_config', LISTENER_TYPE]] as const) {
      if (dynamic[key] !== undefined) rt.awaitFirstFetch(typeUrl, initialFetchTimeoutMs(dynamic[key]));
    }
    // RTDS layers over ADS: the server waits for their first response too, as Envoy's runtime init does.
    for (const l of bootstrap.runtimeLayers) if (l.kind === 'rtds' && !l.file) rt.awaitFirstFetch(RUNTIME_TYPE, l.initialFetchTimeoutMs);
    // Filesystem config sources (lds_config / cds_config with a path), beside or instead of ADS.
    const { pathSources, PathSubscriptions } = await import('../../proxy/bootstrap/path-config-source.ts');
    const sources = pathSources(raw);
    if (sources.length && dynamic.ads_config !== undefined) {
      throw new RigError('MESH_ERR_INVALID_CONFIG', `${source}: dynamic_resources: ${sources.map((x) => x.key).join(' and ')} from a file together with ads_config is not supported; take listeners and clusters from files or from ADS`);
    }
    if (sources.length) {
      const subs = new PathSubscriptions(sources, rt, log);
      subs.start();
      stoppers.push(() => subs.stop());
    }
  }
  if (bootstrap.dynamic && dynamic.ads_config !== undefined) {
    const { XdsClient, shareSecrets } = await import('../../proxy/xds-client/index.ts');
    // SDS secrets come from the control plane (credentials) and from the workload identity (default, ROOTCA).
    const sinks = shareSecrets(rt);
    const xds = new XdsClient({ bootstrap: raw, sink: sinks.xds, log, tokenFile: opts.tokenFile });
    xds.start();
    stoppers.push(() => xds.stop());
    if (probe) {
      const { startWorkloadHealth } = await import('../../proxy/workload-health/index.ts');
      const notReady = () => (rt.isReady() ? undefined : rt.healthCheckFailed ? 'failed by the admin /healthcheck/fail' : `its state is ${rt.state()}`);
      const stop = startWorkloadHealth({ metadata: bootstrap.node.metadata, report: (healthy, message) => xds.reportHealth(healthy, message), proxyNotReady: notReady, proxyStarting: () => rt.state() === 'INITIALIZING', ...agentFiles, log });
      if (stop) stoppers.push(stop);
    }
    const identity = opts.xdsAddress ? identityFromOptions(opts) : undefined;
    if (!identity) {
      // What Istio's agent serves besides the workload identity: the OS's CAs (file-root:system).
      const { systemCaSecret } = await import('../../proxy/identity/index.ts');
      sinks.identity.apply(SECRET_TYPE, new Map([systemCaSecret()]), 'system');
    }
    if (identity) {
      const { IdentityManager } = await import('../../proxy/identity/index.ts');
      const im = new IdentityManager({ ...identity, sink: sinks.identity, log });
      im.start().catch((e: unknown) => log.error({ err: (e as Error).message }, 'workload certificate'));
      stoppers.push(() => im.stop());
    }
  }

  if (probe && !(bootstrap.dynamic && dynamic.ads_config !== undefined)) log.warn(`${source}: PROXY_CONFIG.readinessProbe is only run for a proxy with ADS (it reports the workload's health to the control plane); ignored`);
  await rt.settled();
  const failed = rt.listeners.listeners().filter((l) => l.state === 'failed');
  if (failed.length && !bootstrap.dynamic) {
    throw new RigError('MESH_ERR_PORT_IN_USE', failed.map((l) => `listener ${l.config.name}: ${l.error}`).join('; '));
  }
  ports.listeners = rt.listeners.boundPorts();
  if (opts.portsFile) {
    const tmp = `${opts.portsFile}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(ports) + '\n');
    fs.renameSync(tmp, opts.portsFile);
  }
  log.info({ ports, node: bootstrap.node.id }, 'rig proxy started');
  stoppers.push(
    // The periodic trims run from the start, whatever the proxy's state: a sidecar that stays
    // INITIALIZING (a cluster that never warms) still serves its warm listeners.
    releaseFreeMallocEvery(),
    trimCodeResidencyEvery(),
    trimHeapWhenReady(
      () => rt.state() === 'LIVE',
      (ms) => {
        // What the compacting GC freed goes back now, not at the next 10 s malloc trim (12 MB idle).
        releaseFreeMalloc();
        const exe = trimCodeResidency();
        log.debug({ heapTrimPauseMs: Math.round(ms), codeResidentKb: exe && { before: exe.beforeKb, after: exe.afterKb } }, 'start-up memory returned to the OS');
      },
      { beforeTrim: releaseEnvoyTypes },
    ),
    // A config change loads the types it needs again; a minute later they go again, and a
    // compacting GC returns their pages (a regular one frees them inside still-used pages).
    releaseEnvoyTypesWhenIdle(60_000, () => log.debug({ heapTrimPauseMs: Math.round(trimHeap()) }, 'Envoy types released')),
  );

  async function shutdown(why: string): Promise<void> {
    if (quitting) return;
    quitting = true;
    log.info({ why, drainMs }, 'draining');
    for (const s of stoppers) s();
    await rt.drain(drainMs);
    // Batched spans go out before exit (bounded: a collector that is down costs at most 2 s).
    await Promise.race([flushSpans(rt.stats), new Promise((r) => setTimeout(r, 2000).unref())]);
    rt.stop();
    admin.close();
    ready.close();
    statsServer.close();
    admin.closeAllConnections();
    ready.closeAllConnections();
    statsServer.closeAllConnections();
    log.info('stopped');
    log.flush?.();
    setTimeout(() => process.exit(0), 50).unref();
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}
