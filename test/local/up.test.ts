// `rig up` as a user runs it: real processes from a directory of Workloads, `rig status`,
// `rig logs`, `rig apply` refusing bad files, a bad workload reported while the rest runs, the
// watched directory followed, and `rig down` leaving nothing running.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { leftovers, startMesh, type Mesh } from './mesh-harness.ts';
import { waitFor } from '../helpers/wait.ts';

function workload(name: string, command: string[], extra = '', annotations = '{}'): string {
  return `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: ${name}, labels: { app: ${name} }, annotations: ${annotations} }
spec:
  command: ${JSON.stringify(command)}
  ports: [{ name: http, port: 9080 }]
  readinessProbe: { httpGet: { path: /, port: 9080 } }
${extra}`;
}

const execFileP = promisify(execFile);

const ECHO = ['node', '-e', "require('node:http').createServer((q, s) => s.end(process.env.POD_NAME + ' via ' + process.env.HTTP_PROXY)).listen(+process.env.PORT, process.env.HOST, () => console.log('echo up'))"];

function get(port: number, p = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
}

describe('rig up', () => {
  const config = mkdtempSync(path.join(os.tmpdir(), 'rig-up-config-'));
  let mesh: Mesh;

  before(async () => {
    writeFileSync(path.join(config, 'echo.yaml'), workload('echo', ECHO));
    writeFileSync(path.join(config, 'broken.yaml'), workload('broken', ['rig-test-no-such-binary']));
    const upstreams = (v: string) => `{ "sidecar.rigging.dev/upstreams": "${v}" }`;
    writeFileSync(path.join(config, 'client.yaml'), workload('client', ECHO, '', upstreams('ratings:9080')) + '---\n' + workload('badclient', ECHO, '', upstreams('ratings')));
    const proxyConfig = (v: unknown) => JSON.stringify({ 'proxy.istio.io/config': JSON.stringify(v) });
    writeFileSync(path.join(config, 'legacy.yaml'), workload('legacy', ECHO, '', proxyConfig({ proxyMetadata: { ISTIO_META_HTTP10: '1' } })) + '---\n' + workload('badproxy', ECHO, '', proxyConfig({ drainDuration: '5s' })));
    mesh = await startMesh('up', ['-f', config, '--no-ingress']);
  });
  after(async () => {
    await mesh?.stop();
    rmSync(config, { recursive: true, force: true });
  });

  it('runs every workload replica with its environment, and reports one that cannot start', async () => {
    const s = await mesh.waitFor((s) => s.processes.some((p) => p.name === 'echo-0' && p.appState === 'ready') && s.processes.some((p) => p.name === 'broken-0' && p.state === 'failed'), 'echo running and broken failed');
    const echo = s.processes.find((p) => p.name === 'echo-0')!;
    const body = await get(echo.ports.app!['9080']);
    assert.equal(body, `echo-0 via http://127.0.0.1:${echo.ports.outbound}`);
    const broken = s.processes.find((p) => p.name === 'broken-0')!;
    assert.match(broken.message ?? '', /command "rig-test-no-such-binary" not found/);
    assert.ok(echo.ports.inbound?.['9080'] && echo.ports.outbound);
  });

  it('applies the proxy.istio.io/config proxyMetadata to the sidecar: ISTIO_META_HTTP10 makes it take HTTP/1.0', async () => {
    const s = await mesh.waitFor((s) => ['legacy-0', 'echo-0'].every((n) => s.processes.some((p) => p.name === n && p.appState === 'ready')) && s.processes.some((p) => p.name === 'badproxy-0' && p.state === 'failed'), 'legacy and echo ready, badproxy failed');
    // Once the sidecar's inbound listener is up (the app may be ready before it).
    const http10 = (name: string) =>
      waitFor(`${name}'s sidecar inbound listener`, async () => {
        const port = s.processes.find((p) => p.name === name)!.ports.inbound!['9080'];
        const { stdout } = await execFileP('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '--http1.0', `http://127.0.0.1:${port}/`]).catch(() => ({ stdout: '000' }));
        return stdout === '000' ? undefined : stdout;
      });
    assert.equal(await http10('legacy-0'), '200');
    assert.equal(await http10('echo-0'), '426');
    assert.match(s.processes.find((p) => p.name === 'badproxy-0')!.message ?? '', /proxy\.istio\.io\/config: "drainDuration" not supported by rig up/);
  });

  it('gives a workload a local port per annotated upstream, as Kubernetes service variables', async () => {
    const s = await mesh.waitFor((s) => s.processes.some((p) => p.name === 'client-0' && !!p.pid) && s.processes.some((p) => p.name === 'badclient-0' && p.state === 'failed'), 'client running, badclient failed');
    const client = s.processes.find((p) => p.name === 'client-0')!;
    const env = readFileSync(`/proc/${client.pid}/environ`, 'utf8').split('\0');
    assert.ok(env.includes('RATINGS_SERVICE_HOST=127.0.0.1'));
    assert.ok(env.some((e) => /^RATINGS_SERVICE_PORT=\d+$/.test(e)));
    assert.match(s.processes.find((p) => p.name === 'badclient-0')!.message ?? '', /"ratings" is not HOST:PORT/);
  });

  it('rig status lists the processes in text and JSON', async () => {
    const text = await mesh.rig(['status']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^echo-0 /m);
    assert.match(text.stdout, /broken-0: app: command "rig-test-no-such-binary" not found/);
    const json = JSON.parse((await mesh.rig(['status', '-o', 'json'])).stdout) as { processes: { name: string }[] };
    assert.deepEqual(json.processes.map((p) => p.name).sort(), ['badclient-0', 'badproxy-0', 'broken-0', 'client-0', 'echo-0', 'legacy-0']);
  });

  it('rig proxy-status and proxy-config find the running mesh\'s control plane by themselves', async () => {
    // No Service selects these workloads: each proxy gets listeners and clusters, no routes.
    const synced = /^echo-0\.default\s+Kubernetes\s+SYNCED\s+SYNCED\s/m;
    let last = '';
    const ps = await waitFor('echo-0.default listed as SYNCED', async () => {
      const r = await mesh.rig(['proxy-status']);
      assert.equal(r.code, 0, r.stderr);
      last = r.stdout;
      return synced.test(r.stdout) ? r : undefined;
    }).catch((err: Error) => assert.fail(`${err.message}; last table:\n${last}`));
    assert.match(ps.stdout, /^client-0\.default\s/m);
    const clusters = await mesh.rig(['proxy-config', 'clusters', 'client-0.default']);
    assert.equal(clusters.code, 0, clusters.stderr);
    assert.match(clusters.stdout, /^PassthroughCluster\s/m);
  });

  it('rig logs prints what the app wrote', async () => {
    const logs = await mesh.rig(['logs', 'echo']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /echo up/);
    const unknown = await mesh.rig(['logs', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no workload, replica or gateway named "nope"/);
  });

  it('rig apply refuses an invalid file and changes nothing; a valid one starts its workload', async () => {
    const bad = path.join(config, '..', `bad-${process.pid}.yaml`);
    writeFileSync(bad, workload('second', ['node', '-e', '1'], '  replicas: 0\n'));
    try {
      const refused = await mesh.rig(['apply', '-f', bad]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /replicas/);
      assert.match(refused.stderr, /nothing was applied/);
    } finally {
      rmSync(bad, { force: true });
    }
    const applied = await mesh.rig(['apply', '-f', '-'], workload('second', ECHO));
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /Workload default\/second created/);
    await mesh.waitFor((s) => s.processes.some((p) => p.name === 'second-0' && !!p.pid), 'second-0 running');
    const deleted = await mesh.rig(['delete', '-f', '-'], workload('second', ECHO));
    assert.equal(deleted.code, 0, deleted.stderr);
    await mesh.waitFor((s) => !s.processes.some((p) => p.name === 'second-0'), 'second-0 gone');
  });

  it('keeps the last valid config when a watched file turns invalid, and reports it', async () => {
    const before = mesh.process('echo-0')!;
    writeFileSync(path.join(config, 'echo.yaml'), workload('echo', ECHO, '  replicas: -1\n'));
    const s = await mesh.waitFor((s) => s.configErrors.length > 0, 'the config error in the status');
    assert.match(s.configErrors.join('\n'), /echo\.yaml:\d+:\d+: Error .*replicas/);
    assert.equal(mesh.process('echo-0')?.pid, before.pid);
    assert.match((await mesh.rig(['status'])).stdout, /configuration errors \(the last valid configuration stays in force\)/);
    writeFileSync(path.join(config, 'echo.yaml'), workload('echo', ECHO));
    await mesh.waitFor((s) => s.configErrors.length === 0, 'the config error cleared');
    assert.equal(mesh.process('echo-0')?.pid, before.pid);
  });

  it('follows the watched directory: a removed file stops its workload', async () => {
    rmSync(path.join(config, 'broken.yaml'));
    await mesh.waitFor((s) => !s.processes.some((p) => p.name === 'broken-0'), 'broken-0 gone');
  });

  it('rig down stops everything and leaves nothing running', async () => {
    assert.ok(leftovers(mesh.stateDir).length > 0);
    const down = await mesh.rig(['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /local mesh stopped/);
    assert.notEqual(mesh.child.exitCode ?? mesh.child.signalCode, null);
    assert.deepEqual(leftovers(mesh.stateDir), []);
    const status = await mesh.rig(['status']);
    assert.equal(status.code, 1);
    assert.match(status.stderr, /no local mesh is running/);
  });
});

describe('rig up started again where rig apply left config', () => {
  it('says which applied resources are still in force', async (t) => {
    const config = mkdtempSync(path.join(os.tmpdir(), 'rig-up-config-'));
    writeFileSync(path.join(config, 'echo.yaml'), workload('echo', ECHO));
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'rig-mesh-'));
    mkdirSync(path.join(stateDir, 'applied'));
    writeFileSync(path.join(stateDir, 'applied', 'virtualservice.default.echo.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: echo, namespace: default }\nspec: { hosts: [echo], http: [{ route: [{ destination: { host: echo } }] }] }\n');
    const mesh = await startMesh('up', ['-f', config, '--no-ingress'], { stateDir });
    t.after(async () => {
      await mesh.stop();
      rmSync(config, { recursive: true, force: true });
    });
    await mesh.waitFor((s) => !!s.readyAt, 'the mesh ready');
    assert.match(mesh.output(), /1 resource\(s\) applied with rig apply before this start are in force: VirtualService default\/echo \(rig delete -f removes them/);
    // In the column of every other line: its prefix is as wide as the processes' ('controlplane').
    assert.match(mesh.output(), /^rig {10,}\| 1 resource\(s\) applied/m);
  });
});

describe('rig up killed without a chance to clean up', () => {
  it('a SIGKILLed rig up takes its apps and sidecars with it (the orphan guard)', async (t) => {
    const mesh = await echoMesh(t);
    mesh.child.kill('SIGKILL');
    await new Promise((r) => mesh.child.once('exit', r));
    await waitFor('no process of the killed rig up left', () => (leftovers(mesh.stateDir).length === 0 ? true : undefined), 10_000);
  });

  it('rig down finds and stops what a killed rig up left running', async (t) => {
    const mesh = await echoMesh(t);
    // Without its guard (killed too, as by a kill of everything), the workloads outlive rig up.
    process.kill(orphanGuardOf(mesh.child.pid!), 'SIGKILL');
    mesh.child.kill('SIGKILL');
    await new Promise((r) => mesh.child.once('exit', r));
    assert.ok(leftovers(mesh.stateDir).length > 0, 'the app and its sidecar outlive a SIGKILLed rig up without its guard');
    const down = await mesh.rig(['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /leftover process\(es\) killed/);
    assert.deepEqual(leftovers(mesh.stateDir), []);
  });
});

/** A mesh of one echo workload, ready. */
async function echoMesh(t: { after(fn: () => Promise<void>): void }): Promise<Mesh> {
  const config = mkdtempSync(path.join(os.tmpdir(), 'rig-up-config-'));
  writeFileSync(path.join(config, 'echo.yaml'), workload('echo', ECHO));
  const mesh = await startMesh('up', ['-f', config, '--no-ingress']);
  t.after(async () => {
    await mesh.stop();
    rmSync(config, { recursive: true, force: true });
  });
  await mesh.waitFor((s) => s.processes.some((p) => p.name === 'echo-0' && p.appState === 'ready'), 'echo-0 ready');
  return mesh;
}

/** The pid of the orphan guard (src/local/orphan-guard.ts) among a process's children. */
function orphanGuardOf(parent: number): number {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && readFileSync(`/proc/${e}/cmdline`, 'utf8').includes('groups=')) return Number(e);
    } catch {
      // gone
    }
  }
  throw new Error(`no orphan guard among the children of ${parent}`);
}

describe('rig up with a Gateway port already in use', () => {
  it('says which port is taken and by what Gateway server, and keeps the workloads running', async (t) => {
    const config = mkdtempSync(path.join(os.tmpdir(), 'rig-up-config-'));
    const busy = http.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    writeFileSync(path.join(config, 'echo.yaml'), workload('echo', ECHO));
    writeFileSync(
      path.join(config, 'gateway.yaml'),
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: ["*"]
`,
    );
    const mesh = await startMesh('up', ['-f', config, '--gateway-port', `8080=${port}`], { gatewayPorts: [] });
    t.after(async () => {
      await mesh.stop();
      busy.close();
      rmSync(config, { recursive: true, force: true });
    });
    const s = await mesh.waitFor((s) => /already in use/.test(s.processes.find((p) => p.name === 'istio-ingressgateway')?.message ?? ''), 'the port problem reported');
    assert.match(s.processes.find((p) => p.name === 'istio-ingressgateway')!.message!, new RegExp(`Gateway server port 8080: 127\\.0\\.0\\.1:${port} is already in use`));
    await mesh.waitFor((s) => s.processes.some((p) => p.name === 'echo-0' && p.appState === 'ready'), 'echo-0 still runs');
  });
});
