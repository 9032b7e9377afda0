// What `rig up` prints on its terminal, as a user reads it: the readiness probe's requests that an
// app logs stay in its log file (not one line per replica a second on the terminal), the control
// plane's warnings about the user's config reach the terminal readable and once (also in
// `rig logs controlplane`), a tracer without a collector says what to do, and `rig proxy-status`
// names each proxy's version.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ISTIO_VERSION } from '../../src/core/version.ts';
import { startMesh, type Mesh } from './mesh-harness.ts';
import { waitFor } from '../helpers/wait.ts';

// Logs every request as Bookinfo's apps do (`GET /health 200 0ms`); on SIGTERM it stops listening
// and exits 3.5 s later, so that its sidecar's probe fails (3 × 1 s) while the replica stops.
const LOGGING_APP = ['node', '-e', "const srv = require('node:http').createServer((q, s) => { s.end('ok'); console.log(q.method + ' ' + q.url + ' 200 0ms'); }).listen(+process.env.PORT, process.env.HOST, () => console.log('app up')); process.on('SIGTERM', () => { srv.close(); srv.closeAllConnections(); setTimeout(() => process.exit(0), 3500); })"];

const CONFIG = `apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: app, labels: { app: app } }
spec:
  command: ${JSON.stringify(LOGGING_APP)}
  ports: [{ name: http, port: 9080 }]
  readinessProbe: { httpGet: { path: /health, port: 9080 }, periodSeconds: 1 }
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: default }
spec:
  selector: { matchLabels: { app: app } }
  jwtRules:
  - issuer: testing@secure.istio.io
    jwksUri: http://127.0.0.1:1/jwks.json
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing: [{ randomSamplingPercentage: 100.0 }]
`;

describe('rig up terminal output', () => {
  const config = mkdtempSync(path.join(os.tmpdir(), 'rig-terminal-'));
  let mesh: Mesh;

  before(async () => {
    writeFileSync(path.join(config, 'app.yaml'), CONFIG);
    mesh = await startMesh('up', ['-f', config, '--no-ingress']);
    await mesh.waitFor((s) => !!s.readyAt, 'the mesh ready');
  });
  after(async () => {
    await mesh?.stop();
    rmSync(config, { recursive: true, force: true });
  });

  it("leaves the readiness probe's requests out of the terminal, keeps them in the app's log, and says so once", async () => {
    const logFile = path.join(mesh.stateDir, 'logs', 'app-0.log');
    await waitFor('three probe requests in the log file', async () => (readFileSync(logFile, 'utf8').match(/GET \/health 200/g)?.length ?? 0) >= 3 || undefined);
    const out = mesh.output();
    assert.match(out, /app-0 +\| app up/);
    assert.doesNotMatch(out, /\| GET \/health 200/);
    assert.equal(out.match(/readiness-probe requests .* are not shown here; rig logs app has them/g)?.length, 1, out);
  });

  it("shows the control plane's warning about a jwksUri it cannot fetch on the terminal, once per config change, and in rig logs controlplane", async () => {
    const logFile = path.join(mesh.stateDir, 'logs', 'controlplane.log');
    // The control plane retries a failed fetch every 10 s: wait for the retry, which must not repeat the line.
    await waitFor('two failed JWKS fetches in the control plane log', async () => (readFileSync(logFile, 'utf8').match(/JWKS fetch failed/g)?.length ?? 0) >= 2 || undefined, 30_000);
    const shown = mesh.output().split('\n').filter((l) => l.includes('JWKS fetch failed'));
    assert.equal(shown.length, 1, mesh.output());
    assert.match(shown[0], /^controlplane +\| WARN JWKS fetch failed uri=http:\/\/127\.0\.0\.1:1\/jwks\.json/);
    const logs = await mesh.rig(['logs', 'controlplane']);
    assert.match(logs.stdout, /JWKS fetch failed/);
  });

  it("says what to do when spans go to Istio's default zipkin.istio-system, where no collector runs", async () => {
    const inbound = mesh.process('app-0')!.ports.inbound!['9080'];
    const line = await waitFor('the span export warning', async () => {
      await fetch(`http://127.0.0.1:${inbound}/`).then((r) => r.text()).catch(() => undefined);
      return mesh.output().split('\n').find((l) => l.includes('span export failed'));
    }, 30_000);
    assert.match(line, /^app-0\/proxy +\| WARN span export failed.*zipkin\.istio-system has no endpoint: no collector runs there; run one .*or turn tracing off \(meshConfig enableTracing: false/);
  });

  it("rig proxy-status shows each proxy's version as istioctl does (its ISTIO_VERSION: rig proxy reports the Istio release Rigging follows), not -", async () => {
    const table = await waitFor('app-0 in proxy-status', async () => {
      const r = await mesh.rig(['proxy-status']);
      return r.stdout.includes('app-0.default') ? r.stdout : undefined;
    });
    const row = table.split('\n').find((l) => l.startsWith('app-0.default'))!;
    assert.equal(row.trim().split(/\s+/).at(-1), ISTIO_VERSION, table);
  });

  it('stops with only its own lines on the terminal: the sidecars and control plane noting the apps gone stay in the logs', async () => {
    mesh.child.kill('SIGTERM');
    await new Promise((r) => mesh.child.once('exit', r));
    const out = mesh.output();
    const stopping = out.slice(out.indexOf('stopping every process'));
    assert.match(stopping, /stopped; nothing is left running/);
    assert.doesNotMatch(stopping, /workload is unhealthy|health report ignored/, stopping);
    assert.match(readFileSync(path.join(mesh.stateDir, 'logs', 'app-0.istio-proxy.log'), 'utf8'), /workload is unhealthy/);
  });
});
