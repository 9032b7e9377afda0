// How long a configuration change takes to reach a proxy: `rig controlplane` on a temporary
// directory, one simulated sidecar (sim-ads-stream.ts), then repeatedly a VirtualService file is
// written and the time until the sidecar ACKs the new route version is taken. Also counts the
// route pushes a burst of writes causes (--burst N: the file written N times, --burst-gap-ms apart).
// `node bench/controlplane/change-latency.ts [--services 10] [--changes 20] [--burst 1] [--burst-gap-ms 0]`
// prints the figures as JSON. Extra environment (PILOT_DEBOUNCE_AFTER…) goes to the control plane.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import { SimAdsStream, encodeNames } from './sim-ads-stream.ts';
import type { Envelope } from './sim-ads-stream.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RIG = path.join(HERE, '../../src/cli/main.ts');

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const services = arg('--services', 10);
const changes = arg('--changes', 20);
const burst = arg('--burst', 1);
const burstGapMs = arg('--burst-gap-ms', 0);

const service = (i: number) => `apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ns-0 }\nspec: { selector: { app: svc-${i} }, ports: [{ name: http, port: 8080 }] }\n---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: { name: svc-${i}-0, namespace: ns-0 }\nspec: { address: 10.250.${i >> 8}.${i & 255}, labels: { app: svc-${i} } }`;
const vs = (timeoutMs: number) => `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: svc-0, namespace: ns-0 }\nspec:\n  hosts: [svc-0]\n  http: [{ route: [{ destination: { host: svc-0 } }], timeout: ${timeoutMs}ms }]\n`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-change-latency-'));
const dir = path.join(tmp, 'config');
fs.mkdirSync(dir);
fs.writeFileSync(path.join(dir, 'services.yaml'), Array.from({ length: services }, (_, i) => service(i)).join('\n---\n') + '\n');
const vsFile = path.join(dir, 'vs.yaml');
fs.writeFileSync(vsFile, vs(10_000));
const portsFile = path.join(tmp, 'ports.json');
const cp = fork(RIG, ['controlplane', '--config', dir, '--xds-port', '0', '--no-ca', '--monitoring-port', '0', '--ports-file', portsFile, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
let stream: SimAdsStream | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

try {
  const ports = await until('the control plane', () => (fs.existsSync(portsFile) ? (JSON.parse(fs.readFileSync(portsFile, 'utf8')) as { xds: number }) : undefined));
  const node = { id: 'sidecar~10.0.0.1~svc-0-0.ns-0~ns-0.svc.cluster.local', metadata: { NAMESPACE: 'ns-0', LABELS: { app: 'svc-0' }, SERVICE_ACCOUNT: 'default', INSTANCE_IPS: '10.0.0.1', INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: [{ port: 8080, name: 'http' }] } };
  const s = new SimAdsStream(`127.0.0.1:${ports.xds}`, node, { window: 256 << 20, connectTimeoutMs: 5000 });
  stream = s;
  const eds = encodeNames(Array.from({ length: services }, (_, i) => `outbound|8080||svc-${i}.ns-0.svc.cluster.local`));
  let routeVersion = '';
  let routePushes = 0;
  let ackedAt = 0;
  s.onResponse = (e: Envelope) => {
    s.ack(e, e.type_url === ENDPOINT_TYPE ? eds : e.type_url === ROUTE_TYPE ? encodeNames(['8080']) : undefined);
    if (e.type_url !== ROUTE_TYPE) return;
    routeVersion = e.version_info;
    routePushes++;
    ackedAt = performance.now();
  };
  s.subscribe(CLUSTER_TYPE);
  s.subscribe(ENDPOINT_TYPE, Array.from({ length: services }, (_, i) => `outbound|8080||svc-${i}.ns-0.svc.cluster.local`));
  s.subscribe(LISTENER_TYPE);
  s.subscribe(ROUTE_TYPE, ['8080']);
  await until('the first routes', () => routeVersion || undefined);
  await sleep(1000);
  const delays: number[] = [];
  const pushesPerChange: number[] = [];
  for (let n = 1; n <= changes; n++) {
    const before = routeVersion;
    const pushesBefore = routePushes;
    const t0 = performance.now();
    for (let b = 1; b <= burst; b++) {
      fs.writeFileSync(vsFile, vs(n * 100 + b));
      if (burstGapMs && b < burst) await sleep(burstGapMs);
    }
    await until(`change ${n} ACKed`, () => (routeVersion !== before ? true : undefined));
    delays.push(ackedAt - t0);
    // Whatever else the burst causes arrives within a second.
    await sleep(1000);
    pushesPerChange.push(routePushes - pushesBefore);
  }
  const sorted = [...delays].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 10) / 10;
  process.stdout.write(JSON.stringify({ services, changes, burst, burstGapMs, ackMs: { min: round(sorted[0]), p50: round(sorted[Math.floor(sorted.length / 2)]), max: round(sorted.at(-1)!) }, routePushesPerChange: { min: Math.min(...pushesPerChange), max: Math.max(...pushesPerChange) } }) + '\n');
} finally {
  stream?.close();
  cp.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  if (cp.exitCode === null && cp.signalCode === null) cp.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
}
