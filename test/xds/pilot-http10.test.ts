// istiod's PILOT_HTTP10, read from the environment of a real `rig controlplane` process: every HTTP
// connection manager of every proxy accepts HTTP/1.0 and sniffed ports send http/1.0 to the HTTP
// chain, as in Istio. Without it an ingress gateway answers curl --http1.0 with 426 unless the
// gateway's own ISTIO_META_HTTP10=1 asks for it, and a sniffed inbound port relays it as TCP.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../../src/local/ports.ts';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { runRig, spawnRig, stopProcess } from '../helpers/cli.ts';
import { edgeGatewayArgs, edgeGatewayYaml } from '../helpers/edge-gateway.ts';
import { FIRST_CONFIG_TIMEOUT_MS, RIG_START_TIMEOUT_MS, startRigProxy } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream, type Upstream } from '../proxy/harness.ts';

const execCurl = promisify(execFile);

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ port: 9080 }] }
---${edgeGatewayYaml('{ directResponse: { status: 200, body: { string: edge } } }')}`;

async function curl(version: '--http1.0' | '--http1.1', url: string): Promise<string> {
  const { stdout } = await execCurl('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', version, url]).catch(() => ({ stdout: '' }));
  return stdout;
}

interface Mesh {
  xds: number;
  caPort: number;
  stateDir: string;
}

/** `rig controlplane` with its CA, PILOT_HTTP10 set (or unset) in its environment. */
async function startControlPlaneProcess(t: TestContext, pilotHttp10: string | undefined): Promise<Mesh> {
  const dir = tempDir(t, 'rig-pilot-http10-');
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(configDir);
  fs.writeFileSync(path.join(configDir, 'mesh.yaml'), CONFIG);
  const portsFile = path.join(dir, 'ports.json');
  const env = { ...process.env };
  delete env.PILOT_HTTP10;
  if (pilotHttp10 !== undefined) env.PILOT_HTTP10 = pilotHttp10;
  const args = ['controlplane', '--config', configDir, '--state-dir', stateDir, '--xds-port', '0', '--monitoring-port', '0', '--tls-port', '0', '--ports-file', portsFile, '--log-format', 'text'];
  const child = spawnRig(args, { env });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  t.after(() => stopProcess(child));
  const ports = await waitForPortsFile(portsFile, RIG_START_TIMEOUT_MS, () => child.exitCode !== null).catch((err: Error) => {
    throw new Error(`rig controlplane: ${err.message}\n${log}`);
  });
  // The ports file is written before the CA's TLS port is bound.
  const withTls = await waitFor('the CA port', () => {
    const p = JSON.parse(fs.readFileSync(portsFile, 'utf8')) as Record<string, number>;
    return p.xdsTls ? p : undefined;
  });
  return { xds: ports.xds, caPort: withTls.xdsTls, stateDir };
}

/** An ingress gateway (`rig proxy --mode router`, explicit mode) serving the Gateway's port 8080 on a free port. */
async function startGateway(t: TestContext, mesh: Mesh, name: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const port = await freePort();
  const args = edgeGatewayArgs(name, port);
  const proxy = startRigProxy(t, args, { xdsPort: mesh.xds, env });
  await proxy.started();
  const url = `http://127.0.0.1:${port}/`;
  await waitFor(() => `gateway ${name} serving HTTP/1.1\n${proxy.log()}`, async () => ((await curl('--http1.1', url)) === '200' ? true : undefined), FIRST_CONFIG_TIMEOUT_MS);
  return url;
}

/** The httpbin sidecar, its port 9080 without a declared protocol (sniffed); returns its inbound URL. */
async function startSniffingSidecar(t: TestContext, mesh: Mesh, app: Upstream): Promise<string> {
  const tokenFile = path.join(mesh.stateDir, 'httpbin.token');
  const issued = await runRig(['token', 'issue', '--state-dir', mesh.stateDir, '--namespace', 'foo', '--service-account', 'httpbin', '--out-file', tokenFile]);
  assert.equal(issued.code, 0, issued.stderr);
  const inbound = await freePort();
  const args = ['--namespace', 'foo', '--service-account', 'httpbin', '--workload-name', 'httpbin-0', '--labels', 'app=httpbin', '--workload-port', '9080', '--inbound-port', `9080=${inbound}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())];
  const proxy = startRigProxy(t, args, { xdsPort: mesh.xds, ca: { port: mesh.caPort, rootFile: path.join(mesh.stateDir, 'ca', 'root-cert.pem'), tokenFile } });
  await proxy.started();
  const url = `http://127.0.0.1:${inbound}/sniffed`;
  await waitFor(() => `the sidecar serving HTTP/1.1 on its sniffed port\n${proxy.log()}`, async () => ((await curl('--http1.1', url)) === '200' ? true : undefined), FIRST_CONFIG_TIMEOUT_MS);
  return url;
}

/** Whether the app's last request went through a connection manager (which adds x-request-id) or was relayed as TCP. */
function lastThroughHcm(app: Upstream): boolean {
  return app.requests.at(-1)?.headers['x-request-id'] !== undefined;
}

test('PILOT_HTTP10 on the control plane and ISTIO_META_HTTP10 on a gateway: curl --http1.0 through real processes', async (t) => {
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const [plain, http10] = await Promise.all([startControlPlaneProcess(t, undefined), startControlPlaneProcess(t, '1')]);
  const [gwPlain, gwMeta, gwPilot, sniffPlain, sniffPilot] = await Promise.all([
    startGateway(t, plain, 'ingress-plain'),
    startGateway(t, plain, 'ingress-legacy', { ISTIO_META_HTTP10: '1' }),
    startGateway(t, http10, 'ingress'),
    startSniffingSidecar(t, plain, app),
    startSniffingSidecar(t, http10, app),
  ]);

  assert.equal(await curl('--http1.0', gwPlain), '426', 'no switch, no metadata: Envoy answers HTTP/1.0 with 426');
  assert.equal(await curl('--http1.0', gwMeta), '200', 'the gateway proxy with ISTIO_META_HTTP10=1');
  assert.equal(await curl('--http1.0', gwPilot), '200', 'every proxy of a control plane with PILOT_HTTP10=1');

  // Sniffing: without the switch http/1.0 is relayed as TCP (it passes, but no HCM sees it).
  assert.equal(await curl('--http1.0', sniffPlain), '200');
  assert.equal(lastThroughHcm(app), false, 'relayed as TCP without PILOT_HTTP10');
  assert.equal(await curl('--http1.1', sniffPlain), '200');
  assert.equal(lastThroughHcm(app), true, 'HTTP/1.1 goes to the HTTP chain');
  assert.equal(await curl('--http1.0', sniffPilot), '200');
  assert.equal(lastThroughHcm(app), true, 'with PILOT_HTTP10 the http_inspector sends http/1.0 to the HTTP chain');
});

test('a PILOT_HTTP10 that is not a boolean stops the control plane with a clear error', async (t) => {
  const dir = tempDir(t, 'rig-pilot-http10-bad-');
  const r = await runRig(['controlplane', '--config', dir, '--xds-port', '0', '--monitoring-port', '0', '--no-ca'], { env: { ...process.env, PILOT_HTTP10: 'yes' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /environment variable PILOT_HTTP10="yes" is not a boolean: use true or false/);
});
