// One debounce between a configuration file's change and the push (istiod's PILOT_DEBOUNCE_AFTER,
// PILOT_DEBOUNCE_MAX, PILOT_ENABLE_EDS_DEBOUNCE, read from `rig controlplane`'s environment): the
// watched directory's changes are read when the push debounce ends, so a file written in several
// steps is read once, whole, and pushed once. Real processes, real files, a real ADS client.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { AdsClient, type AdsResponse } from '../../src/xds/ads-client.ts';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { runRig, spawnRig, stopProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until, waitFor } from '../helpers/wait.ts';

const DEBOUNCE_ENV = ['PILOT_DEBOUNCE_AFTER', 'PILOT_DEBOUNCE_MAX', 'PILOT_ENABLE_EDS_DEBOUNCE'];

// svc-1's first endpoint, of the service account its sidecars below have: a sidecar joining changes
// its endpoints only, which EDS debounce off pushes at once (a new service account is a full push).
const SERVICES = [0, 1]
  .map((i) => `apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ns-0 }\nspec: { selector: { app: svc-${i} }, ports: [{ name: http, port: 8080 }] }\n`)
  .concat('apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: { name: svc-1-vm, namespace: ns-0 }\nspec: { address: 10.0.1.1, serviceAccount: default, labels: { app: svc-1, security.istio.io/tlsMode: istio } }\n')
  .join('---\n');
const vs = (svc: string, timeout: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${svc}
  namespace: ns-0
spec:
  hosts: [${svc}]
  http:
  - route:
    - destination: { host: ${svc} }
    timeout: ${timeout}
`;

interface LogLine {
  level: number;
  msg: string;
  files?: string[];
  [k: string]: unknown;
}

interface ControlPlaneProcess {
  configDir: string;
  xds: number;
  /** The control plane's JSON log lines so far. */
  log(): LogLine[];
}

/** `rig controlplane --config <dir>` (debug log) with only `env` of the debounce variables set. */
async function startControlPlane(t: TestContext, env: Record<string, string>): Promise<ControlPlaneProcess> {
  const dir = tempDir(t, 'rig-push-debounce-');
  const configDir = path.join(dir, 'config');
  fs.mkdirSync(configDir);
  fs.writeFileSync(path.join(configDir, 'services.yaml'), SERVICES);
  fs.writeFileSync(path.join(configDir, 'svc-0.yaml'), vs('svc-0', '10s'));
  const portsFile = path.join(dir, 'ports.json');
  const childEnv = { ...process.env, ...env };
  for (const name of DEBOUNCE_ENV) if (!(name in env)) delete childEnv[name];
  const child = spawnRig(['controlplane', '--config', configDir, '--no-ca', '--xds-port', '0', '--monitoring-port', '0', '--ports-file', portsFile, '--log-level', 'debug'], { env: childEnv });
  let text = '';
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  t.after(() => stopProcess(child));
  const ports = await waitForPortsFile(portsFile, 30_000, () => child.exitCode !== null).catch((err: Error) => {
    throw new Error(`rig controlplane: ${err.message}\n${text}`);
  });
  // Complete lines only: the last one may still be being written.
  const log = () =>
    text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  return { configDir, xds: ports.xds, log };
}

/** A sidecar of svc-`app` in ns-0 watching CDS, LDS, EDS and the routes of port 8080, ACKing everything. */
function connect(t: TestContext, cp: ControlPlaneProcess, app: number, ip?: string): AdsClient {
  const metadata: EnvoyJson = { NAMESPACE: 'ns-0', LABELS: { app: `svc-${app}` }, INTERCEPTION_MODE: 'REDIRECT', ...(ip ? { INSTANCE_IPS: ip, RIG_WORKLOAD_PORTS: [{ port: 8080, name: 'http' }] } : {}) };
  const client = new AdsClient(`127.0.0.1:${cp.xds}`, { id: `sidecar~${ip ?? '10.0.0.1'}~svc-${app}-0.ns-0~ns-0.svc.cluster.local`, metadata });
  t.after(() => client.close());
  const eds = ['svc-0', 'svc-1'].map((s) => `outbound|8080||${s}.ns-0.svc.cluster.local`);
  client.onResponse = (r) => client.ack(r, r.type_url === ROUTE_TYPE ? ['8080'] : r.type_url === ENDPOINT_TYPE ? eds : undefined);
  client.subscribe(CLUSTER_TYPE);
  client.subscribe(LISTENER_TYPE);
  client.subscribe(ENDPOINT_TYPE, eds);
  client.subscribe(ROUTE_TYPE, ['8080']);
  return client;
}

/** The route timeout the sidecar holds for `svc` (from the last RDS response). */
function timeoutOf(client: AdsClient, svc: string): string | undefined {
  const rds = client.responses.filter((r) => r.type_url === ROUTE_TYPE).at(-1);
  const vhost = (rds?.resources[0]?.virtual_hosts as EnvoyJson[] | undefined)?.find((v) => v.name === `${svc}.ns-0.svc.cluster.local:8080`);
  return ((vhost?.routes as EnvoyJson[] | undefined)?.[0]?.route as EnvoyJson | undefined)?.timeout as string | undefined;
}

const routesSince = (client: AdsClient, mark: number): AdsResponse[] => client.responses.slice(mark).filter((r) => r.type_url === ROUTE_TYPE);

/** Writes `text` to `file` through one open descriptor in `parts` writes, `pauseMs` apart (an editor saving in steps). */
async function writeInSteps(file: string, text: string, parts: number, pauseMs: number): Promise<void> {
  const fd = fs.openSync(file, 'w');
  try {
    const size = Math.ceil(text.length / parts);
    for (let at = 0; at < text.length; at += size) {
      if (at > 0 && pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      fs.writeSync(fd, text.slice(at, at + size));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Reloads of the configuration directory logged after `mark` lines, as the files each one read. */
const reloadsSince = (cp: ControlPlaneProcess, mark: number) => cp.log().slice(mark).filter((l) => l.msg === 'configuration reloaded').map((l) => (l.files ?? []).map((f) => path.basename(f)));
const errorsSince = (cp: ControlPlaneProcess, mark: number) => cp.log().slice(mark).filter((l) => l.level >= 50);

test('a burst of writes (a file saved in steps, another file) is read once, whole, and pushed once', async (t) => {
  const cp = await startControlPlane(t, { PILOT_DEBOUNCE_AFTER: '1s' });
  const client = connect(t, cp, 0);
  await until('the first routes', () => timeoutOf(client, 'svc-0') === '10s');
  const listening = cp.log().find((l) => l.msg === 'control plane listening')!;
  assert.deepEqual([listening.debounceMs, listening.debounceMaxMs, listening.edsDebounce], [1000, 10_000, true], "istiod's defaults but the quiet period");
  const logMark = cp.log().length;
  const responseMark = client.responses.length;
  // The first steps alone are not a valid file (cut inside the document).
  const saving = writeInSteps(path.join(cp.configDir, 'svc-0.yaml'), vs('svc-0', '3s'), 4, 50);
  fs.writeFileSync(path.join(cp.configDir, 'svc-1.yaml'), vs('svc-1', '4s'));
  await saving;
  await until('the burst pushed', () => timeoutOf(client, 'svc-0') === '3s' && timeoutOf(client, 'svc-1') === '4s');
  // A change afterwards: had the burst been read in two parts, its second part would show up as
  // another push, or in this change's read.
  fs.writeFileSync(path.join(cp.configDir, 'svc-1.yaml'), vs('svc-1', '5s'));
  await until('the next change pushed', () => timeoutOf(client, 'svc-1') === '5s');
  assert.deepEqual(reloadsSince(cp, logMark).map((files) => files.sort()), [['svc-0.yaml', 'svc-1.yaml'], ['svc-1.yaml']], 'one read per burst');
  assert.equal(routesSince(client, responseMark).length, 2, 'one route push per burst');
  assert.deepEqual(errorsSince(cp, logMark), [], 'no half-written file reported');
});

test('PILOT_DEBOUNCE_AFTER: a file saved in steps slower than the default quiet period is still read once, whole', async (t) => {
  const cp = await startControlPlane(t, { PILOT_DEBOUNCE_AFTER: '3s' });
  const client = connect(t, cp, 0);
  await until('the first routes', () => timeoutOf(client, 'svc-0') === '10s');
  assert.equal(cp.log().find((l) => l.msg === 'control plane listening')!.debounceMs, 3000);
  const logMark = cp.log().length;
  const responseMark = client.responses.length;
  // Pauses longer than the default 100 ms: the default would read (and report) a half-written file.
  await writeInSteps(path.join(cp.configDir, 'svc-0.yaml'), vs('svc-0', '3s'), 3, 300);
  await until('the new timeout pushed', () => timeoutOf(client, 'svc-0') === '3s');
  assert.deepEqual(reloadsSince(cp, logMark), [['svc-0.yaml']]);
  assert.equal(routesSince(client, responseMark).length, 1);
  assert.deepEqual(errorsSince(cp, logMark), []);
});

test('PILOT_DEBOUNCE_MAX: a change is pushed within the maximum even when the quiet period is an hour', async (t) => {
  const cp = await startControlPlane(t, { PILOT_DEBOUNCE_AFTER: '1h', PILOT_DEBOUNCE_MAX: '1.5s' });
  const listening = await waitFor('the listening line', () => cp.log().find((l) => l.msg === 'control plane listening'));
  assert.deepEqual([listening.debounceMs, listening.debounceMaxMs], [3_600_000, 1500]);
  const client = connect(t, cp, 0);
  await until('the first routes', () => timeoutOf(client, 'svc-0') === '10s');
  fs.writeFileSync(path.join(cp.configDir, 'svc-0.yaml'), vs('svc-0', '3s'));
  await until('the new timeout pushed', () => timeoutOf(client, 'svc-0') === '3s');
});

test('PILOT_ENABLE_EDS_DEBOUNCE=false: a new endpoint of a known service account is pushed without waiting for the quiet period', async (t) => {
  const cp = await startControlPlane(t, { PILOT_DEBOUNCE_AFTER: '1h', PILOT_DEBOUNCE_MAX: '1h', PILOT_ENABLE_EDS_DEBOUNCE: 'false' });
  const watcher = connect(t, cp, 0);
  await until('the first routes', () => timeoutOf(watcher, 'svc-0') === '10s');
  // A sidecar of svc-1 registers itself (INSTANCE_IPS): an endpoint change only (svc-1 had this service account).
  connect(t, cp, 1, '10.0.0.7');
  await until('the new endpoint pushed', () =>
    watcher.responses.some((r) => r.type_url === ENDPOINT_TYPE && r.resources.some((e) => e.cluster_name === 'outbound|8080||svc-1.ns-0.svc.cluster.local' && JSON.stringify(e.endpoints ?? []).includes('10.0.0.7'))),
  );
});

/**
 * A VirtualService change, then, within its debounce, a second replica of svc-1 joining (an
 * endpoint change alone: same service account, so EDS only). Returns the watcher's first EDS
 * response with the new endpoint and first RDS response with the new timeout, in arrival order.
 */
async function configThenEndpoint(t: TestContext, env: Record<string, string>) {
  const cp = await startControlPlane(t, { PILOT_DEBOUNCE_AFTER: '3s', ...env });
  const watcher = connect(t, cp, 0);
  connect(t, cp, 1, '10.0.0.7');
  const edsWith = (ip: string) => (r: AdsResponse) => r.type_url === ENDPOINT_TYPE && r.resources.some((e) => e.cluster_name === 'outbound|8080||svc-1.ns-0.svc.cluster.local' && JSON.stringify(e.endpoints ?? []).includes(ip));
  await until('the first routes and svc-1 endpoint', () => timeoutOf(watcher, 'svc-0') === '10s' && watcher.responses.some(edsWith('10.0.0.7')));
  const logMark = cp.log().length;
  const mark = watcher.responses.length;
  fs.writeFileSync(path.join(cp.configDir, 'svc-0.yaml'), vs('svc-0', '3s'));
  await until('the change noticed', () => cp.log().slice(logMark).some((l) => l.msg.startsWith('configuration changed')));
  connect(t, cp, 1, '10.0.0.8');
  await until('the new timeout and endpoint pushed', () => timeoutOf(watcher, 'svc-0') === '3s' && watcher.responses.slice(mark).some(edsWith('10.0.0.8')));
  const since = watcher.responses.slice(mark);
  const eds = since.findIndex(edsWith('10.0.0.8'));
  const rds = since.findIndex((r) => r.type_url === ROUTE_TYPE);
  return { since, eds, rds };
}

test('PILOT_ENABLE_EDS_DEBOUNCE=false: an endpoint change goes at once, on its own, while a pending config change keeps its debounce', async (t) => {
  const { since, eds, rds } = await configThenEndpoint(t, { PILOT_ENABLE_EDS_DEBOUNCE: 'false' });
  assert.ok(eds >= 0 && rds > eds, `the endpoint came first (responses: ${since.map((r) => r.type_url.split('.').at(-1)).join(', ')})`);
  const edsPush = since.filter((r) => r.version_info === since[eds].version_info);
  assert.deepEqual(edsPush.map((r) => r.type_url), [ENDPOINT_TYPE], 'the endpoint push is EDS only');
  assert.deepEqual(since[eds].resources.map((e) => e.cluster_name), ['outbound|8080||svc-1.ns-0.svc.cluster.local'], 'of the changed cluster only');
  assert.notEqual(since[rds].version_info, since[eds].version_info, 'the config change went in a push of its own, later');
});

test('PILOT_ENABLE_EDS_DEBOUNCE (default true): an endpoint change within the debounce of a config change goes with it', async (t) => {
  const { since, eds, rds } = await configThenEndpoint(t, {});
  assert.ok(eds >= 0 && rds >= 0);
  assert.equal(since[eds].version_info, since[rds].version_info, 'one push carries both');
  assert.equal(new Set(since.map((r) => r.version_info)).size, 1, 'and nothing else was pushed');
});

test('a malformed debounce variable stops rig controlplane with an error naming it', async (t) => {
  const dir = tempDir(t, 'rig-push-debounce-env-');
  const args = ['controlplane', '--config', dir, '--no-ca', '--xds-port', '0', '--monitoring-port', '0', '--log-format', 'text'];
  const cases: [string, string, RegExp][] = [
    ['PILOT_DEBOUNCE_AFTER', 'soon', /environment variable PILOT_DEBOUNCE_AFTER="soon" is not a duration/],
    ['PILOT_DEBOUNCE_AFTER', '100', /environment variable PILOT_DEBOUNCE_AFTER="100" is not a duration/],
    ['PILOT_DEBOUNCE_MAX', '-1s', /environment variable PILOT_DEBOUNCE_MAX="-1s" is not a duration/],
    ['PILOT_ENABLE_EDS_DEBOUNCE', 'maybe', /environment variable PILOT_ENABLE_EDS_DEBOUNCE="maybe" is not a boolean/],
  ];
  for (const [name, value, message] of cases) {
    const r = await runRig(args, { env: { [name]: value } });
    assert.notEqual(r.code, 0, `${name}=${value} refused`);
    assert.match(r.stderr, message);
  }
});
