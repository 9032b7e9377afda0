// `npm run bench:soak`: mixed traffic (HTTP/1.1 keep-alive and one-shot, HTTP/2, gRPC, WebSocket,
// TCP) through a `rig proxy -c` process for a while, then checks that the proxy's open file
// descriptors and resident memory are back at the baseline taken after a warm-up (issue 4 §7).
// Baseline and final figures are both taken at rest: clients closed, idle timeouts (2 s on both
// sides) elapsed, so every connection the traffic opened must be gone again, and after a full
// garbage collection requested over the proxy's inspector (so the heap figure is live data only).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import WebSocket from 'ws';
import { cpuSeconds, rssBytes } from './lib/proc-stats.ts';
import { startBackends, type Backends } from './soak-backends.ts';
import { DEFAULT_MIX, runTraffic, type Kind, type Mix, type Tally } from './soak-clients.ts';

const USAGE = `usage: npm run bench:soak -- [options]
  --duration D     traffic after the warm-up: 600s, 10m, 3m (default 10m)
  --warmup D       traffic before the baseline is taken (default 30s)
  --sample D       how often RSS and fds are printed while the traffic runs (default 30s)
  --rss-slack MB   final RSS may exceed the baseline by this much (default 15)
  --heap-slack MB  final heap in use (after a full GC) may exceed the baseline by this much (default 3)
  --workers LIST   workers per kind, e.g. tcp=4,http2=2 (kinds: http1, http1-close, http2, grpc,
                   websocket, tcp; unlisted kinds keep the default mix, 0 turns one off)
  --json FILE      also write the figures as JSON`;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const IDLE_S = 2;

function seconds(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new Error(`not a duration: ${v} (e.g. 600s, 10m)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n;
}

function bootstrap(b: Backends): object {
  const idle = { common_http_protocol_options: { idle_timeout: `${IDLE_S}s` } };
  const cluster = (name: string, port: number, extra: object = {}) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...idle,
    ...extra,
  });
  const h2 = { http2_protocol_options: {} };
  const listener = (name: string, filter: object) => ({ name, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [filter] }] });
  return {
    node: { id: 'soak', cluster: 'soak' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        listener('http', {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
            stat_prefix: 'soak_http',
            upgrade_configs: [{ upgrade_type: 'websocket' }],
            common_http_protocol_options: { idle_timeout: `${IDLE_S}s` },
            route_config: {
              name: 'soak',
              virtual_hosts: [
                {
                  name: 'all',
                  domains: ['*'],
                  routes: [
                    { match: { prefix: '/ws' }, route: { cluster: 'ws' } },
                    { match: { prefix: '/soak.Echo/' }, route: { cluster: 'grpc', timeout: '10s' } },
                    { match: { prefix: '/h2/' }, route: { cluster: 'h2' } },
                    { match: { prefix: '/' }, route: { cluster: 'h1', retry_policy: { retry_on: 'connect-failure,reset', num_retries: 1 } } },
                  ],
                },
              ],
            },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
          },
        }),
        listener('tcp', {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'soak_tcp', cluster: 'tcp', idle_timeout: '30s' },
        }),
      ],
      clusters: [cluster('h1', b.h1), cluster('h2', b.h2, h2), cluster('grpc', b.grpc, h2), cluster('ws', b.ws), { ...cluster('tcp', b.tcp), common_http_protocol_options: undefined }],
    },
  };
}

/** A full GC in the proxy through the DevTools protocol (HeapProfiler.collectGarbage). */
async function collectGarbage(inspectorUrl: string): Promise<void> {
  const ws = new WebSocket(inspectorUrl);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  for (let id = 1; id <= 2; id++) {
    ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
    await new Promise<void>((resolve) => {
      const onMessage = (m: WebSocket.RawData): void => {
        if ((JSON.parse(String(m)) as { id?: number }).id !== id) return;
        ws.off('message', onMessage);
        resolve();
      };
      ws.on('message', onMessage);
    });
  }
  ws.close();
}

function mixFrom(list: string | undefined): Mix {
  const workers = { ...DEFAULT_MIX.workers };
  for (const item of (list ?? '').split(',').filter(Boolean)) {
    const [kind, n] = item.split('=');
    if (!(kind in workers) || !/^\d+$/.test(n ?? '')) throw new Error(`--workers: "${item}" is not kind=count with kind one of ${Object.keys(workers).join(', ')}`);
    workers[kind as Kind] = Number(n);
  }
  return { ...DEFAULT_MIX, workers };
}

function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

interface Figures {
  rssMb: number;
  /** V8 heap in use (process metrics on the proxy's Prometheus port): a leak shows here first. */
  heapMb: number;
  fds: number;
}

const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

async function figures(pid: number, statsPort: number): Promise<Figures> {
  const fds = openFds(pid);
  const text = await (await fetch(`http://127.0.0.1:${statsPort}/stats/prometheus`)).text();
  const heap = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
  return { rssMb: mb(rssBytes(pid)), heapMb: heap ? mb(Number(heap[1])) : NaN, fds };
}

const show = (f: Figures): string => `${f.rssMb} MB RSS, ${f.heapMb} MB heap used, ${f.fds} fds`;

async function adminStats(adminPort: number, filter: string): Promise<{ name: string; value: number }[]> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/stats?format=json&filter=${encodeURIComponent(filter)}`);
  return ((await res.json()) as { stats: { name: string; value: number }[] }).stats;
}

async function adminStat(adminPort: number, name: string): Promise<number> {
  return (await adminStats(adminPort, `^${name}$`)).find((s) => s.name === name)?.value ?? NaN;
}

function total(t: Record<Kind, Tally>): { ok: number; failed: number } {
  let ok = 0;
  let failed = 0;
  for (const v of Object.values(t)) {
    ok += v.ok;
    failed += v.failed;
  }
  return { ok, failed };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { duration: { type: 'string', default: '10m' }, warmup: { type: 'string', default: '30s' }, sample: { type: 'string', default: '30s' }, 'rss-slack': { type: 'string', default: '15' }, 'heap-slack': { type: 'string', default: '3' }, json: { type: 'string' }, workers: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const durationS = seconds(values.duration);
  const warmupS = seconds(values.warmup);
  const sampleS = seconds(values.sample);
  const mix = mixFrom(values.workers);
  const rssSlack = Number(values['rss-slack']);
  const heapSlack = Number(values['heap-slack']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-soak-'));
  const backends = await startBackends();
  const cfgFile = path.join(dir, 'bootstrap.yaml');
  const portsFile = path.join(dir, 'ports.json');
  fs.writeFileSync(cfgFile, stringify(bootstrap(backends)));
  const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', path.join(ROOT, 'src/cli/main.ts'), 'proxy', '-c', cfgFile, '--ports-file', portsFile, '--ready-port', '0', '--stats-port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let inspectorUrl: string | undefined;
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-8000);
    inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
  });
  const cleanup = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await backends.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    let ports: { admin: number; stats: number; listeners: Record<string, number> } | undefined;
    for (let i = 0; i < 400 && !ports; i++) {
      if (child.exitCode !== null) throw new Error(`rig proxy exited ${child.exitCode}: ${stderr}`);
      if (fs.existsSync(portsFile)) ports = JSON.parse(fs.readFileSync(portsFile, 'utf8'));
      else await sleep(50);
    }
    if (!ports) throw new Error(`rig proxy did not start: ${stderr}`);
    const inspector = inspectorUrl;
    if (!inspector) throw new Error(`no inspector URL from rig proxy: ${stderr}`);
    const atRest = async (): Promise<Figures> => {
      await sleep((IDLE_S + 2) * 1000);
      await collectGarbage(inspector);
      await sleep(500);
      return figures(pid, ports.stats);
    };
    const pid = child.pid!;
    const traffic = { http: ports.listeners.http, tcp: ports.listeners.tcp };
    const start = await figures(pid, ports.stats);
    console.log(`rig proxy pid ${pid}: at start ${show(start)}; warm-up ${warmupS}s`);

    let stop = { stopped: false };
    let run = runTraffic(traffic, mix, stop);
    await sleep(warmupS * 1000);
    stop.stopped = true;
    const warm = await run;
    const base = await atRest();
    console.log(`baseline at rest after ${total(warm).ok} warm-up exchanges: ${show(base)}`);

    stop = { stopped: false };
    const t0 = performance.now();
    const cpu0 = cpuSeconds(pid);
    run = runTraffic(traffic, mix, stop);
    const samples: (Figures & { s: number })[] = [];
    let peak = base;
    for (let elapsed = 0; elapsed < durationS; ) {
      const step = Math.min(sampleS, durationS - elapsed);
      await sleep(step * 1000);
      elapsed += step;
      const f = await figures(pid, ports.stats);
      peak = { rssMb: Math.max(peak.rssMb, f.rssMb), heapMb: Math.max(peak.heapMb, f.heapMb), fds: Math.max(peak.fds, f.fds) };
      samples.push({ s: Math.round(elapsed), ...f });
      console.log(`  ${Math.round(elapsed)}s: ${show(f)}`);
      if (child.exitCode !== null) throw new Error(`rig proxy exited ${child.exitCode}: ${stderr}`);
    }
    stop.stopped = true;
    const tallies = await run;
    const wallS = (performance.now() - t0) / 1000;
    const cpuS = cpuSeconds(pid) - cpu0;
    const end = await atRest();
    const activeCx = await adminStat(ports.admin, 'http.soak_http.downstream_cx_active');
    const activeRq = await adminStat(ports.admin, 'http.soak_http.downstream_rq_active');
    // Where failures came from, as the proxy counted them (connect failures, resets, timeouts, 5xx).
    const failureStats = (await adminStats(ports.admin, '(connect_fail|_reset|_timeout|rq_5xx|_cx_protocol_error|idle_timeout)$')).filter((x) => x.value > 0);
    const sum = total(tallies);
    console.log(`after ${Math.round(wallS)}s of traffic, at rest: ${show(end)}; peak ${show(peak)}`);
    console.log(`exchanges: ${sum.ok} ok (${Math.round(sum.ok / wallS)}/s), ${sum.failed} failed; downstream_cx_active ${activeCx}, downstream_rq_active ${activeRq}; proxy CPU ${cpuS.toFixed(1)} s (${((cpuS / wallS) * 100).toFixed(1)} % of a core)`);
    if (failureStats.length) console.log(`proxy failure counters: ${failureStats.map((x) => `${x.name}=${x.value}`).join(', ')}`);
    for (const [k, v] of Object.entries(tallies)) console.log(`  ${k.padEnd(12)} ${String(v.ok).padStart(8)} ok ${v.failed ? `${v.failed} failed (last: ${v.lastError})` : ''}`);
    const problems: string[] = [];
    if (end.fds > base.fds) problems.push(`${end.fds - base.fds} more open fds than at the baseline`);
    if (end.rssMb > base.rssMb + rssSlack) problems.push(`RSS ${end.rssMb} MB exceeds the baseline ${base.rssMb} MB by more than ${rssSlack} MB`);
    if (!(end.heapMb <= base.heapMb + heapSlack)) problems.push(`heap in use ${end.heapMb} MB exceeds the baseline ${base.heapMb} MB by more than ${heapSlack} MB`);
    if (sum.failed) problems.push(`${sum.failed} exchanges failed`);
    if (activeCx !== 0 || activeRq !== 0) problems.push(`proxy still counts ${activeCx} connections and ${activeRq} requests active`);
    if (values.json) fs.writeFileSync(values.json, JSON.stringify({ durationS: wallS, warmupS, start, base, peak, end, samples, tallies, cpuS, failureStats, activeCx, activeRq, problems }, null, 2) + '\n');
    console.log(problems.length ? `SOAK FAILED: ${problems.join('; ')}` : 'soak passed: fds and RSS back at the baseline, no failed exchange');
    return problems.length ? 1 : 0;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main().catch((e: unknown) => {
  console.error((e as Error).message);
  return 2;
});
