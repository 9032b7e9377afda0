// Auto mTLS through the real control plane (with its CA) and two real `rig proxy` processes: the
// server workload DISABLEs mTLS on its port (workload portLevelMtls under a STRICT namespace), so
// the client sidecar must talk plaintext to it (EDS marks the endpoint tlsMode disabled); switching
// the port back to STRICT makes the client use mTLS again (the server sees its SPIFFE identity).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { attachCertificateAuthority } from '../../src/ca/index.ts';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { freePort, tempDir } from '../ca/ca-test-helpers.ts';
import { spawnRig, stopProcess } from '../helpers/cli.ts';
import { startUpstream } from '../proxy/harness.ts';
import { parseYaml } from './fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const CONFIG = (portMode: string) => `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: foo }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  portLevelMtls: { "9080": { mode: ${portMode} } }
`;

async function startProxy(t: TestContext, dir: string, name: string, args: string[], cp: { xds: number; ca: number; root: string; token: string }): Promise<void> {
  const tokenFile = path.join(dir, `${name}.token`);
  fs.writeFileSync(tokenFile, cp.token, { mode: 0o600 });
  const p = spawnRig(['proxy', '--xds-address', `127.0.0.1:${cp.xds}`, '--ca-address', `127.0.0.1:${cp.ca}`, '--ca-root-file', cp.root, '--token-file', tokenFile, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', '--log-format', 'text', ...args]);
  t.after(() => stopProcess(p));
}

test('auto mTLS: a client sidecar talks plaintext to a port whose PeerAuthentication is DISABLE, mTLS once it is STRICT', async (t) => {
  const dir = tempDir(t, 'rig-automtls-');
  const store = new MemoryConfigStore();
  store.apply(parseYaml(CONFIG('DISABLE')));
  const cp = await startControlPlane({ store, stateDir: dir, xdsPort: 0, monitoringPort: 0, debounceMs: 10 });
  t.after(() => cp.stop());
  const { ca, tokens, tlsPort } = await attachCertificateAuthority(cp, { stateDir: dir, tlsPort: 0 });
  t.after(() => ca.close());
  const root = path.join(dir, 'ca', 'root-cert.pem');
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const outbound = await freePort();
  const token = async (sa: string) => (await tokens.issue({ namespace: 'foo', serviceAccount: sa })).token;
  const cpPorts = { xds: cp.ports.xds, ca: tlsPort, root };
  await startProxy(t, dir, 'httpbin', ['--namespace', 'foo', '--service-account', 'httpbin', '--workload-name', 'httpbin-0', '--labels', 'app=httpbin', '--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())], { ...cpPorts, token: await token('httpbin') });
  await startProxy(t, dir, 'sleep', ['--namespace', 'foo', '--service-account', 'sleep', '--workload-name', 'sleep-0', '--labels', 'app=sleep', '--outbound-port', String(outbound)], { ...cpPorts, token: await token('sleep') });
  const viaSleep = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: outbound, path: 'http://httpbin.foo.svc.cluster.local:9080/hello', agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
  const xfcc = (r: { body: string }) => (JSON.parse(r.body) as { headers: Record<string, string | undefined> }).headers['x-forwarded-client-cert'];
  // DISABLE on the port: plaintext from the client sidecar (no client identity reaches the server).
  const plain = await waitFor('a request through the client sidecar', async () => {
    const r = await viaSleep();
    return r.status === 200 ? r : undefined;
  });
  assert.equal(xfcc(plain), undefined);
  // STRICT on the port: the client switches to mTLS and the server sees its SPIFFE identity.
  store.apply(parseYaml(CONFIG('STRICT')));
  const mtls = await waitFor('mTLS after STRICT', async () => {
    const r = await viaSleep();
    return r.status === 200 && xfcc(r) ? r : undefined;
  });
  assert.match(xfcc(mtls)!, /URI=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/sleep/);
});
