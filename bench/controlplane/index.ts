// Control plane scale benchmark (issue 3 §7): N services, M simulated sidecars in separate
// load-generator processes, one VirtualService changed; measures the time until every proxy has
// ACKed the new route version, and the control plane's RSS and CPU (it runs as its own process).
// Proxies connect at --connect-rate per second (default 100), each on its own HTTP/2 connection.
// Standalone: `node bench/controlplane/index.ts [--services 1000] [--proxies 2000] [--generators 2] [--connect-rate 100] [--sync-timeout 270] [--cold-start] [--scoped] [--verbose]`
// prints the figures as JSON; the bench harness calls runScaleBench().
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, peakRssBytes, rssBytes } from '../lib/proc-stats.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RIG = path.join(HERE, '../../src/cli/main.ts');
const PORT = 8080;

export interface ScaleOptions {
  services?: number;
  proxies?: number;
  generators?: number;
  namespaces?: number;
  smoke?: boolean;
  /** Proxies connecting per second, all generators together (default 100; 0 = all at once). */
  connectRate?: number;
  /** Longest wait for every proxy to sync before the change (default 270 s, smoke 75 s). */
  syncTimeoutMs?: number;
  /** No workload is known before the proxies connect: each proxy's registration may change clusters (SANs). */
  coldStart?: boolean;
  /** A root-namespace Sidecar limits every proxy to its own namespace's services (egress ./*), as real meshes scope. */
  scoped?: boolean;
  /** Progress on stderr while the proxies connect. */
  verbose?: boolean;
}

export interface ScaleFigures {
  services: number;
  proxies: number;
  /** Proxies that see the changed service (all, or its namespace's with --scoped) and must ACK. */
  acking: number;
  /** From the file change until every proxy ACKed the new route version. */
  ackAllMs: number;
  /** Median proxy's ACK delay. */
  ackP50Ms: number;
  ackP99Ms: number;
  rssMB: number;
  peakRssMB: number;
  /** V8 heap in use and memory outside it (buffers) in the control plane after the push. */
  heapUsedMB: number;
  externalMB: number;
  /** Control-plane CPU seconds spent from the change until all ACKed. */
  cpuSeconds: number;
  /** CPU seconds the load generators (the simulated proxies) spent in that time, on the same machine. */
  proxiesCpuSeconds: number;
  /** Streams the simulated proxies reopened while connecting (Envoy-like retry after a failed connect). */
  reconnects: number;
  /** Control-plane CPU seconds to connect and sync all proxies. */
  connectCpuSeconds: number;
  connectMs: number;
  /** From the change until the control plane had written the push to every stream. */
  pushWrittenMs: number;
  /** Generating and writing that push (after the store reload and debounce). */
  pushDurationMs: number;
  /** xDS types that push regenerated (push_status), e.g. ["rds"]. */
  pushTypes: string[];
  goalMet: boolean;
}

/**
 * The services, each with one running workload the registry knows before any sidecar connects
 * (a WorkloadEntry, as Kubernetes Endpoints would be: the proxies connect to a control plane that
 * already knows the mesh, e.g. after its restart). Without it every connecting proxy would be the
 * first endpoint of its service, change its clusters' SANs and push CDS to every proxy, which
 * measures a cold start of the whole mesh instead (see `coldStart`).
 */
function configYaml(services: number, namespaces: number, coldStart: boolean): string {
  const docs: string[] = [];
  for (let i = 0; i < services; i++) {
    const ns = `ns-${i % namespaces}`;
    docs.push(`apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ${ns} }\nspec: { selector: { app: svc-${i} }, ports: [{ name: http, port: ${PORT} }] }`);
    if (!coldStart) docs.push(`apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: { name: svc-${i}-0, namespace: ${ns} }\nspec: { address: 10.250.${i >> 8}.${i & 255}, labels: { app: svc-${i}, security.istio.io/tlsMode: istio }, serviceAccount: default }`);
  }
  return docs.join('\n---\n') + '\n';
}

function vsYaml(timeout: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: svc-0, namespace: ns-0 }\nspec:\n  hosts: [svc-0]\n  http: [{ route: [{ destination: { host: svc-0 } }], timeout: ${timeout} }]\n`;
}

async function waitFor<T>(fn: () => T | undefined, what: string, ms: number): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** How many streams are in each route sync state, with the versions sent (for a push that did not complete). */
async function routeStatus(monitoring: number): Promise<string> {
  try {
    const rows = (await (await fetch(`http://127.0.0.1:${monitoring}/debug/syncz`)).json()) as { route_status: string; route_version_sent: string }[];
    const count = new Map<string, number>();
    for (const r of rows) count.set(`${r.route_status} ${r.route_version_sent}`, (count.get(`${r.route_status} ${r.route_version_sent}`) ?? 0) + 1);
    return JSON.stringify(Object.fromEntries(count));
  } catch (err) {
    return `unavailable (${String(err)})`;
  }
}

/**
 * RIG_BENCH_CP_PROF=DIR: the control plane writes a V8 CPU profile into DIR when it stops.
 * RIG_BENCH_CP_HEAPSNAP=DIR: a heap snapshot into DIR after the push (before the figures' process stops).
 * RIG_BENCH_GEN_PROF=DIR: the load generators' CPU profiles (genExecArgv).
 */
function cpExecArgv(): string[] {
  const prof = process.env.RIG_BENCH_CP_PROF;
  const snap = process.env.RIG_BENCH_CP_HEAPSNAP;
  return [...process.execArgv, ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), ...(snap ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snap}`] : [])];
}

/** RIG_BENCH_GEN_PROF=DIR: each load generator writes a V8 CPU profile into DIR when it stops. */
function genExecArgv(): string[] {
  const prof = process.env.RIG_BENCH_GEN_PROF;
  return prof ? [...process.execArgv, '--cpu-prof', '--cpu-prof-dir', prof] : process.execArgv;
}

/** Signals the control plane to write a heap snapshot and waits until the file stops growing. */
async function heapSnapshot(pid: number, dir: string): Promise<void> {
  const before = new Set(fs.readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  let size = -1;
  let since = Date.now();
  await waitFor(() => {
    const file = fs.readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!file) return undefined;
    const now = fs.statSync(path.join(dir, file)).size;
    if (now !== size) [size, since] = [now, Date.now()];
    return size > 0 && Date.now() - since > 1000 ? true : undefined;
  }, 'the heap snapshot', 120_000);
}

export async function runScaleBench(opts: ScaleOptions = {}): Promise<ScaleFigures> {
  const services = opts.services ?? (opts.smoke ? 100 : 1000);
  const proxies = opts.proxies ?? (opts.smoke ? 200 : 2000);
  const generatorsN = opts.generators ?? 2;
  const namespaces = opts.namespaces ?? 10;
  const connectRate = opts.connectRate ?? 100;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-cp-scale-'));
  const dir = path.join(tmp, 'config');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'services.yaml'), configYaml(services, namespaces, opts.coldStart ?? false));
  fs.writeFileSync(path.join(dir, 'vs.yaml'), vsYaml('10s'));
  if (opts.scoped) fs.writeFileSync(path.join(dir, 'sidecar.yaml'), 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: istio-system }\nspec: { egress: [{ hosts: [./*] }] }\n');
  const portsFile = path.join(tmp, 'ports.json');
  const cp = fork(RIG, ['controlplane', '--config', dir, '--xds-port', '0', '--tls-port', '0', '--monitoring-port', '0', '--ports-file', portsFile, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: cpExecArgv() });
  const gens: ChildProcess[] = [];
  try {
    const ports = await waitFor(() => (fs.existsSync(portsFile) ? (JSON.parse(fs.readFileSync(portsFile, 'utf8')) as { xds: number; monitoring: number }) : undefined), 'the control plane', 30_000);
    const pid = cp.pid!;
    const acks: number[] = [];
    const status = new Map<ChildProcess, { withRoutes: number; quietMs: number; reconnects: number; endReasons: Record<string, number> }>();
    const cpu0 = cpuSeconds(pid);
    const t0 = Date.now();
    const per = Math.ceil(proxies / generatorsN);
    for (let g = 0; g < generatorsN; g++) {
      const count = Math.min(per, proxies - g * per);
      const child = fork(path.join(HERE, 'load-generator.ts'), [JSON.stringify({ address: `127.0.0.1:${ports.xds}`, from: g * per, count, services, namespaces, port: PORT, rate: connectRate / generatorsN, scoped: opts.scoped ?? false })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: genExecArgv() });
      child.on('message', (m: { type: string; times?: number[]; withRoutes?: number; quietMs?: number; reconnects?: number; endReasons?: Record<string, number> }) => {
        if (m.type === 'acked') acks.push(...m.times!);
        if (m.type === 'status') status.set(child, { withRoutes: m.withRoutes!, quietMs: m.quietMs!, reconnects: m.reconnects!, endReasons: m.endReasons! });
      });
      gens.push(child);
    }
    // Synced: every proxy has its routes and no response of any type went out for 1.5 s.
    let lastLog = Date.now();
    const progress = () => {
      const all = [...status.values()];
      const withRoutes = all.reduce((n, s) => n + s.withRoutes, 0);
      return `${withRoutes}/${proxies} proxies have routes after ${Math.round((Date.now() - t0) / 1000)} s (${all.reduce((n, s) => n + s.reconnects, 0)} reconnects ${JSON.stringify(all.map((s) => s.endReasons))}); control plane ${Math.round(rssBytes(pid) / 1e6)} MB RSS, ${(cpuSeconds(pid) - cpu0).toFixed(1)} CPU s`;
    };
    // Within the harness's limit (300 s), so that a run that cannot sync says how far it got.
    const syncMs = opts.syncTimeoutMs ?? (opts.smoke ? 75_000 : 270_000);
    try {
      await waitFor(() => {
        if (gens.some((g) => !g.connected)) throw new Error('a load generator exited (see its error above)');
        for (const g of gens) g.send({ type: 'status' });
        const all = [...status.values()];
        const withRoutes = all.reduce((n, s) => n + s.withRoutes, 0);
        if (opts.verbose && Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          process.stderr.write(`connecting: ${progress()}\n`);
        }
        return all.length === gens.length && withRoutes === proxies && all.every((s) => s.quietMs > 1500) ? true : undefined;
      }, 'all proxies to sync', syncMs);
    } catch (err) {
      throw new Error(`proxies did not sync: ${progress()} (${(err as Error).message})`);
    }
    const connectMs = Date.now() - t0 - 1500;
    const connectCpuSeconds = cpuSeconds(pid) - cpu0;
    for (const g of gens) g.send({ type: 'watch' });
    await new Promise((r) => setTimeout(r, 200));
    const cpu1 = cpuSeconds(pid);
    const gensCpu = () => gens.reduce((n, g) => n + cpuSeconds(g.pid!), 0);
    const gensCpu1 = gensCpu();
    const change = Date.now();
    fs.writeFileSync(path.join(dir, 'vs.yaml'), vsYaml('5s'));
    // Scoped, only the proxies of the changed service's namespace (ns-0) see it and get new routes.
    let expected = proxies;
    if (opts.scoped) expected = Array.from({ length: proxies }, (_, k) => (k % services) % namespaces).filter((ns) => ns === 0).length;
    try {
      await waitFor(() => (acks.length >= expected ? true : undefined), `${expected} ACKs of the new version`, 120_000);
    } catch {
      throw new Error(`${acks.length}/${expected} proxies ACKed the new routes within 120 s; control plane route status: ${await routeStatus(ports.monitoring)}`);
    }
    const delays = acks.map((a) => a - change).sort((a, b) => a - b);
    // When the control plane finished generating and writing the push (config store reload + debounce + push).
    const status2 = ((await (await fetch(`http://127.0.0.1:${ports.monitoring}/debug/push_status`)).json()) as { last?: { at: string; durationMs: number; types?: string[] }; memory: { heapUsed: number; external: number } });
    const last = status2.last;
    const figures: ScaleFigures = {
      services,
      proxies,
      acking: expected,
      ackAllMs: delays.at(-1)!,
      ackP50Ms: delays[Math.floor(delays.length / 2)],
      ackP99Ms: delays[Math.min(delays.length - 1, Math.floor(delays.length * 0.99))],
      rssMB: Math.round(rssBytes(pid) / 1e6),
      peakRssMB: Math.round(peakRssBytes(pid) / 1e6),
      heapUsedMB: Math.round(status2.memory.heapUsed / 1e6),
      externalMB: Math.round(status2.memory.external / 1e6),
      cpuSeconds: Number((cpuSeconds(pid) - cpu1).toFixed(2)),
      proxiesCpuSeconds: Number((gensCpu() - gensCpu1).toFixed(2)),
      reconnects: [...status.values()].reduce((n, s) => n + s.reconnects, 0),
      connectCpuSeconds: Number(connectCpuSeconds.toFixed(2)),
      connectMs,
      pushWrittenMs: last ? Date.parse(last.at) - change : -1,
      pushDurationMs: last?.durationMs ?? -1,
      pushTypes: last?.types ?? [],
      goalMet: false,
    };
    figures.goalMet = figures.ackAllMs <= 2000 && figures.peakRssMB <= 1000;
    if (process.env.RIG_BENCH_CP_HEAPSNAP) await heapSnapshot(pid, process.env.RIG_BENCH_CP_HEAPSNAP);
    return figures;
  } finally {
    // A profiling load generator writes its profile when it exits: give it the time.
    const genProf = process.env.RIG_BENCH_GEN_PROF;
    await Promise.all(
      gens.map(async (g) => {
        const exited = new Promise((r) => g.once('exit', r));
        if (g.connected) g.send({ type: 'stop' });
        if (genProf) await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
        g.kill('SIGKILL');
      }),
    );
    cp.kill('SIGTERM');
    // A profiling control plane writes its profile when it exits: give it the time.
    const exited = new Promise((r) => cp.once('exit', r));
    await Promise.race([exited, new Promise((r) => setTimeout(r, process.env.RIG_BENCH_CP_PROF ? 60_000 : 200))]);
    if (cp.exitCode === null && cp.signalCode === null) cp.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const figures = await runScaleBench({ services: arg('--services'), proxies: arg('--proxies'), generators: arg('--generators'), connectRate: arg('--connect-rate'), syncTimeoutMs: arg('--sync-timeout') && arg('--sync-timeout')! * 1000, smoke: process.argv.includes('--smoke'), verbose: process.argv.includes('--verbose'), coldStart: process.argv.includes('--cold-start'), scoped: process.argv.includes('--scoped') });
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}
