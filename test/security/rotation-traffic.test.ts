// Rotation while traffic flows loses no request (issue 6 §6): the real control plane with its CA
// and two real `rig proxy` processes (client sidecar → server sidecar over STRICT mutual TLS, a
// new upstream connection per request) serve a steady stream of requests while the workload
// certificates rotate every ~6.4 s (8 s lifetime), the root rotates to a new key (distributed,
// then signing), the overlap ends, and the root is renewed with its key. Every request succeeds,
// and an established connection carries requests throughout (it is never dropped).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { test } from 'node:test';
import pino from 'pino';
import { createKeyAndCsr } from '../../src/proxy/identity/index.ts';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { startUpstream } from '../proxy/harness.ts';

const CONFIG = `
apiVersion: v1
kind: Namespace
metadata: { name: foo }
---
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { app: httpbin }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: foo }
spec: { mtls: { mode: STRICT } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: httpbin, namespace: foo }
spec:
  host: httpbin.foo.svc.cluster.local
  trafficPolicy: { connectionPool: { http: { maxRequestsPerConnection: 1 } } }
`;

/** Log chunks of the proxies that show a private key (must stay 0). */
let proxyKeysLogged = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function viaClientSidecar(port: number): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: 'http://httpbin.foo.svc.cluster.local:9080/hello', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.message }));
  });
}

/** The certificate the server sidecar presents on its inbound port (serial, and the root it chains to). */
function serverCert(port: number, ca: string): Promise<crypto.X509Certificate | undefined> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, rejectUnauthorized: false, checkServerIdentity: () => undefined }, () => {
      const raw = s.getPeerCertificate().raw;
      s.destroy();
      resolve(raw ? new crypto.X509Certificate(raw) : undefined);
    });
    s.on('error', () => resolve(undefined));
  });
}

test('rotation while traffic flows loses no request: workload certificates, a new root key, the end of the overlap, a renewed root', async (t) => {
  const issued = new Map<string, number>();
  let keysLogged = 0;
  const caLog = pino({ level: 'debug' }, {
    write(line: string) {
      if (line.includes('PRIVATE KEY')) keysLogged++;
      if (process.env.RIG_TEST_DEBUG) process.stderr.write(`[ca] ${line}`);
      const e = JSON.parse(line) as { msg?: string; identity?: string };
      if (e.msg === 'issued workload certificate' && e.identity) issued.set(e.identity, (issued.get(e.identity) ?? 0) + 1);
    },
  });
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-rotation-', config: CONFIG, ca: { workloadCertTtlSeconds: 8, keySwitchDelaySeconds: 2.5, log: caLog } });
  const { ca, rootFile: root } = mesh;
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const inbound = await freePort();
  const outbound = await freePort();
  const countKeys = (d: Buffer) => {
    if (d.includes('PRIVATE KEY')) proxyKeysLogged++;
  };
  await startSidecar(t, mesh, { namespace: 'foo', name: 'httpbin', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${inbound}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())], onLog: countKeys });
  await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(outbound)], onLog: countKeys });

  // Ready: a request goes through both sidecars over mTLS.
  const deadline = Date.now() + 40_000;
  for (;;) {
    const r = await viaClientSidecar(outbound);
    if ('status' in r && r.status === 200) {
      assert.match(JSON.parse(r.body).headers['x-forwarded-client-cert'], /URI=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/sleep/);
      break;
    }
    assert.ok(Date.now() < deadline, `the mesh did not become ready: ${JSON.stringify(r)}`);
    await sleep(100);
  }

  // Steady traffic from 3 clients (each ~30 requests/s), every request a new mTLS connection between the sidecars.
  const failures: string[] = [];
  let ok = 0;
  let running = true;
  const clients = Array.from({ length: 3 }, async () => {
    while (running) {
      const r = await viaClientSidecar(outbound);
      if ('status' in r && r.status === 200) ok++;
      else failures.push(new Date().toISOString() + ' ' + JSON.stringify('status' in r ? { status: r.status, body: r.body.slice(0, 200) } : r));
      // A steady stream, not a flood: the CI runs other tests beside this one on two cores.
      await sleep(25);
    }
  });
  // One established mTLS connection straight to the server sidecar (a client certificate of the
  // mesh CA, which expires during the test): it must carry requests throughout, never dropped.
  const { csrPem, privateKeyPem } = await createKeyAndCsr('spiffe://cluster.local/ns/foo/sa/sleep');
  const chain = await ca.sign({ csrPem, identity: 'spiffe://cluster.local/ns/foo/sa/sleep' });
  const longLived = new https.Agent({ keepAlive: true, maxSockets: 1, cert: chain.slice(0, -1).join(''), key: privateKeyPem, ca: chain.at(-1), checkServerIdentity: () => undefined });
  t.after(() => longLived.destroy());
  const sockets = new Set<number>();
  let longOk = 0;
  const established = (async () => {
    while (running) {
      const r = await new Promise<string>((resolve) => {
        const req = https.get({ host: '127.0.0.1', port: inbound, path: '/long', headers: { host: 'httpbin.foo' }, agent: longLived }, (res) => {
          sockets.add(res.socket.localPort ?? 0);
          res.resume();
          res.on('end', () => resolve(String(res.statusCode)));
        });
        req.on('error', (e) => resolve(e.message));
      });
      if (r === '200') longOk++;
      else failures.push(`${new Date().toISOString()} established connection: ${r}`);
      await sleep(100);
    }
  })();
  const serials = new Set<string>();
  const watch = (async () => {
    while (running) {
      const c = await serverCert(inbound, ca.trustBundlePem());
      if (c) serials.add(c.serialNumber);
      await sleep(200);
    }
  })();

  try {
    await sleep(2000);
    const oldRoot = ca.roots()[0]!;
    await ca.rotateRoot(); // new key: distributed now, signing after 2.5 s
    await sleep(2500 + 8000 + 1000); // the switch, then every certificate from the old key has expired
    const newRoot = ca.roots()[0]!;
    assert.notEqual(newRoot.fingerprint256, oldRoot.fingerprint256);
    const current = await serverCert(inbound, ca.trustBundlePem());
    assert.ok(current?.verify(newRoot.publicKey), 'the server sidecar presents a certificate from the new root');
    ca.endRootOverlap();
    await sleep(2500);
    await ca.rotateRoot({ keepKey: true }); // the self-signed rotator's renewal
    await sleep(2500);
  } finally {
    running = false;
    await Promise.all([...clients, watch, established]);
  }

  assert.deepEqual(failures, [], `${failures.length} of ${ok + failures.length} requests failed`);
  assert.ok(ok >= 40, `only ${ok} requests made`);
  assert.equal(sockets.size, 1, 'the established connection was never dropped');
  assert.ok(longOk >= 40, `only ${longOk} requests on the established connection`);
  assert.ok(serials.size >= 3, `the server certificate rotated (${serials.size} serials seen)`);
  for (const id of ['spiffe://cluster.local/ns/foo/sa/sleep', 'spiffe://cluster.local/ns/foo/sa/httpbin']) {
    assert.ok((issued.get(id) ?? 0) >= 5, `${id} got ${issued.get(id) ?? 0} certificates`);
  }
  assert.equal(fs.readFileSync(root, 'utf8'), ca.trustBundlePem());
  assert.equal(keysLogged, 0, 'the CA never logs a private key');
  assert.equal(proxyKeysLogged, 0, 'the proxies never log a private key');
});
