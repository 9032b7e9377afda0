// ProxyConfig resources in a `rig up` mesh: a sidecar starts with its effective ProxyConfig's
// environmentVariables in its environment (as Istio's injector puts them in istio-proxy's), so
// ISTIO_META_* become node metadata in its bootstrap (/config_dump) and ISTIO_META_HTTP10 lets it
// take HTTP/1.0. Precedence mesh-wide < namespace < workload; a gateway has the mesh-wide one. As in Istio, a ProxyConfig applied to
// a running mesh reaches a sidecar at its next start, not while it runs. Real processes throughout.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/wait.ts';
import { startMesh, type Mesh } from './mesh-harness.ts';

const execFileP = promisify(execFile);
const APP = "require('node:http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, process.env.HOST)";

const workload = (name: string) => `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  command: [node, -e, ${JSON.stringify(APP)}]
  ports: [{ name: http, port: 9080 }]
  readinessProbe: { httpGet: { path: /, port: 9080 } }
`;

const proxyConfig = (namespace: string, name: string, spec: string) => `apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: { name: ${name}, namespace: ${namespace} }
spec: ${spec}
`;

function getJson(port: number, p: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(JSON.parse(b)));
      })
      .on('error', reject);
  });
}

describe('rig up: ProxyConfig environmentVariables reach the sidecars', () => {
  const config = mkdtempSync(path.join(os.tmpdir(), 'rig-proxyconfig-'));
  let mesh: Mesh;

  const proc = (name: string) => mesh.process(name)!;
  async function nodeMetadata(name: string): Promise<Record<string, unknown>> {
    const dump = (await getJson(proc(name).ports.admin!, '/config_dump')) as { configs: { '@type': string; bootstrap?: { node: { metadata: Record<string, unknown> } } }[] };
    return dump.configs.find((c) => c['@type'].endsWith('BootstrapConfigDump'))!.bootstrap!.node.metadata;
  }
  const http10 = (name: string) =>
    waitFor(`${name}'s sidecar inbound listener`, async () => {
      const { stdout } = await execFileP('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '--http1.0', `http://127.0.0.1:${proc(name).ports.inbound!['9080']}/`]).catch(() => ({ stdout: '000' }));
      return stdout === '000' ? undefined : stdout;
    });

  before(async () => {
    writeFileSync(
      path.join(config, 'mesh.yaml'),
      [
        workload('ratings'),
        workload('echo'),
        proxyConfig('istio-system', 'mesh-wide', '{ environmentVariables: { ISTIO_META_MESH_WIDE: "yes", ISTIO_META_LEVEL: mesh } }'),
        proxyConfig('default', 'namespace-wide', '{ environmentVariables: { ISTIO_META_LEVEL: namespace } }'),
        proxyConfig('default', 'ratings', '{ selector: { matchLabels: { app: ratings } }, concurrency: 2, environmentVariables: { ISTIO_META_LEVEL: workload, ISTIO_META_HTTP10: "1" } }'),
      ].join('---\n'),
    );
    mesh = await startMesh('up', ['-f', config]);
    await mesh.waitFor((s) => !!s.readyAt, 'every replica ready', 60_000);
  });
  after(async () => {
    await mesh?.stop();
    rmSync(config, { recursive: true, force: true });
  });

  it('ISTIO_META_* become node metadata, the workload ProxyConfig over the namespace one over the mesh-wide one', async () => {
    const ratings = await nodeMetadata('ratings-0');
    assert.deepEqual({ level: ratings.LEVEL, mesh: ratings.MESH_WIDE, http10: ratings.HTTP10 }, { level: 'workload', mesh: 'yes', http10: '1' });
    const echo = await nodeMetadata('echo-0');
    assert.deepEqual({ level: echo.LEVEL, mesh: echo.MESH_WIDE, http10: echo.HTTP10 }, { level: 'namespace', mesh: 'yes', http10: undefined });
    // The ingress gateway, in the root namespace, has the mesh-wide one.
    const gateway = await nodeMetadata('istio-ingressgateway');
    assert.deepEqual({ level: gateway.LEVEL, mesh: gateway.MESH_WIDE }, { level: 'mesh', mesh: 'yes' });
    // In the sidecar process's own environment, as in istio-proxy's container.
    const env = readFileSync(`/proc/${proc('ratings-0').proxyPid}/environ`, 'utf8').split('\0');
    assert.ok(env.includes('ISTIO_META_LEVEL=workload'));
    // ISTIO_META_HTTP10 has its effect: the ratings sidecar takes HTTP/1.0, echo's does not.
    assert.equal(await http10('ratings-0'), '200');
    assert.equal(await http10('echo-0'), '426');
    assert.match(mesh.output(), /ratings-0: concurrency 2 \(ProxyConfig default\/ratings\) is not applied: rig proxy runs one event loop/);
  });

  it('a ProxyConfig applied to the running mesh reaches a sidecar at its next start', async () => {
    const applied = await mesh.rig(['apply', '-f', '-'], proxyConfig('default', 'echo', '{ selector: { matchLabels: { app: echo } }, environmentVariables: { ISTIO_META_LEVEL: changed } }'));
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /ProxyConfig default\/echo created/);
    assert.match(applied.stdout, /a ProxyConfig takes effect when a proxy starts: running sidecars and gateways keep theirs until they restart/);
    await waitFor('rig up saw the change', async () => (/ProxyConfig changed/.test(mesh.output()) ? true : undefined));
    const pid = proc('echo-0').proxyPid!;
    assert.equal((await nodeMetadata('echo-0')).LEVEL, 'namespace', 'the running sidecar keeps what it started with');
    process.kill(pid, 'SIGKILL');
    await mesh.waitFor((s) => s.processes.some((p) => p.name === 'echo-0' && p.proxyPid !== pid && p.proxyState === 'ready'), 'echo-0 sidecar restarted', 60_000);
    assert.equal((await nodeMetadata('echo-0')).LEVEL, 'changed');
    assert.equal((await nodeMetadata('ratings-0')).LEVEL, 'workload');
  });
});
