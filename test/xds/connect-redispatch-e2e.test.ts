// An app whose fetch goes through its explicit-mode sidecar's HTTP_PROXY (Node's fetch with
// NODE_USE_ENV_PROXY=1 sends even http:// URLs as a CONNECT tunnel) gets the client sidecar's
// handling of a captured connection: the HTTP request inside the tunnel goes through the outbound
// listener of its destination (VirtualService fault and response headers, istio_requests_total
// with reporter="source"), and so do h2c inside a tunnel and HTTP/1.1 inside an HTTP/2 CONNECT;
// https inside a tunnel to a TLS port goes through that port's TCP/TLS chain; a CONNECT to a host
// outside the mesh is still passed through.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { listenLocal } from '../helpers/listen.ts';
import { makeTaskCertificates } from '../helpers/istio-task-certs.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { request } from '../proxy/harness.ts';

const config = (httpPort: number, tlsPort: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: foo }
spec:
  hosts: [reviews.foo.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${httpPort} } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: foo }
spec:
  hosts: [reviews.foo.svc.cluster.local]
  http:
  - match: [{ headers: { x-test: { exact: abort } } }]
    fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews.foo.svc.cluster.local } }]
  - route: [{ destination: { host: reviews.foo.svc.cluster.local } }]
    headers: { response: { set: { x-client-route: reviews-default } } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: foo }
spec:
  hosts: [secure.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: 8443, name: tls, protocol: TLS }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { tls: ${tlsPort} } }]
`;

/** A fetch in a Node process of its own, as an app under `rig up` makes it: the proxy from the environment. */
function appFetch(outbound: number, url: string, headers: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<{ status: number; body: string; headers: Record<string, string> }> {
  const script = `fetch(${JSON.stringify(url)}, { headers: ${JSON.stringify(headers)} }).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text(), headers: Object.fromEntries(r.headers) })), (e) => { console.error(e.cause ?? e); process.exit(1); });`;
  const proxy = `http://127.0.0.1:${outbound}`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { env: { ...process.env, HTTP_PROXY: proxy, HTTPS_PROXY: proxy, NO_PROXY: '', NODE_USE_ENV_PROXY: '1', ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`fetch ${url}: ${stderr || err.message}`));
      resolve(JSON.parse(stdout));
    });
  });
}

/** An h2c request (prior knowledge) inside a CONNECT tunnel opened by hand. */
function h2cThroughConnect(outbound: number, authority: string, headers: http2.OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(outbound, '127.0.0.1', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n\r\n`));
    socket.on('error', reject);
    socket.once('data', (c: Buffer) => {
      if (!c.toString('latin1').startsWith('HTTP/1.1 200')) return reject(new Error(`CONNECT ${authority}: ${c.toString('latin1')}`));
      const session = http2.connect(`http://${authority}`, { createConnection: () => socket });
      session.on('error', reject);
      const req = session.request({ ':path': '/h2c', ...headers });
      req.on('response', (h) => {
        resolve(Number(h[':status']));
        session.close();
      });
      req.on('error', reject);
      req.end();
    });
  });
}

/** An HTTP/1.1 request inside an HTTP/2 CONNECT stream (h2c, prior knowledge, to the sidecar); resolves with its status. */
function h1ThroughH2Connect(outbound: number, authority: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${outbound}`);
    session.on('error', reject);
    const tunnel = session.request({ ':method': 'CONNECT', ':authority': authority }, { endStream: false });
    tunnel.on('error', reject);
    tunnel.once('response', (h) => {
      if (h[':status'] !== 200) return reject(new Error(`CONNECT ${authority}: ${h[':status']}`));
      let out = '';
      tunnel.on('data', (c: Buffer) => {
        out += c.toString('latin1');
        const m = /^HTTP\/1\.1 (\d{3}) /.exec(out);
        if (m) {
          resolve(Number(m[1]));
          session.destroy();
        }
      });
      let head = `GET /h2-connect HTTP/1.1\r\nhost: ${authority}\r\nconnection: close\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      tunnel.write(head + '\r\n');
    });
  });
}

function sourceRequests(stats: string, code: string): number {
  let n = 0;
  for (const m of stats.matchAll(/^istio_requests_total\{([^}]*)\} (\d+)/gm)) {
    if (m[1].includes('reporter="source"') && m[1].includes('destination_service="reviews.foo.svc.cluster.local"') && m[1].includes(`response_code="${code}"`)) n += Number(m[2]);
  }
  return n;
}

test('CONNECT through an explicit sidecar: the inside is handled as a captured connection', async (t) => {
  const seen: string[] = [];
  const backend = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.host}`);
    res.end('from reviews');
  });
  const httpPort = await listenLocal(backend, t);
  const dir = tempDir(t, 'rig-connect-');
  const root = makeTaskCertificates(dir, path.join(dir, 'secure'), 'secure.example.com', 'example');
  fs.writeFileSync(path.join(dir, 'root.pem'), root);
  const tlsBackend = https.createServer({ cert: fs.readFileSync(path.join(dir, 'secure/tls.crt')), key: fs.readFileSync(path.join(dir, 'secure/tls.key')) }, (_req, res) => res.end('secure hello'));
  const tlsPort = await listenLocal(tlsBackend, t);
  const outsideBackend = http.createServer((_req, res) => res.end('outside'));
  const outsidePort = await listenLocal(outsideBackend, t);

  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-connect-cp-', config: config(httpPort, tlsPort), controlPlane: { debounceMs: 10 } });
  const out = await freePort();
  // The listener stats read below: an Istio sidecar keeps them when its ProxyConfig asks.
  const env = { PROXY_CONFIG: JSON.stringify({ proxyStatsMatcher: { inclusionSuffixes: ['downstream_cx_total'] } }) };
  const sidecar = await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', env, args: ['--outbound-port', String(out)] });
  const { stats: statsPort, admin: adminPort } = await sidecar.started();
  // Config has arrived once the absolute-form route answers.
  await waitFor(
    () => `the sidecar's routes\n${sidecar.log()}`,
    async () => ((await request(out, { path: 'http://reviews.foo.svc.cluster.local:9080/', headers: { host: 'reviews.foo.svc.cluster.local:9080' } }).catch(() => undefined))?.status === 200 ? true : undefined),
  );

  const url = 'http://reviews.foo.svc.cluster.local:9080/reviews/0';
  const aborted = await appFetch(out, url, { 'x-test': 'abort' });
  assert.equal(aborted.status, 418, 'the VirtualService fault of the client sidecar applies inside the tunnel');
  const routed = await appFetch(out, url, {});
  assert.equal(routed.status, 200);
  assert.equal(routed.body, 'from reviews');
  assert.equal(routed.headers['x-client-route'], 'reviews-default');
  // The request reached the app as a captured one would, in origin form.
  assert.ok(seen.includes('GET /reviews/0 reviews.foo.svc.cluster.local:9080'), seen.join('\n'));

  // h2c inside the tunnel: the HTTP connection manager of the destination's listener takes it too.
  assert.equal(await h2cThroughConnect(out, 'reviews.foo.svc.cluster.local:9080', { 'x-test': 'abort' }), 418);
  assert.equal(await h2cThroughConnect(out, 'reviews.foo.svc.cluster.local:9080', {}), 200);
  assert.ok(seen.includes('GET /h2c reviews.foo.svc.cluster.local:9080'), seen.join('\n'));

  // An HTTP/2 CONNECT (one stream of an h2c connection to the sidecar): its inside likewise.
  assert.equal(await h1ThroughH2Connect(out, 'reviews.foo.svc.cluster.local:9080', { 'x-test': 'abort' }), 418);
  assert.equal(await h1ThroughH2Connect(out, 'reviews.foo.svc.cluster.local:9080', {}), 200);
  assert.ok(seen.includes('GET /h2-connect reviews.foo.svc.cluster.local:9080'), seen.join('\n'));

  const stats = await waitFor(
    () => 'istio_requests_total from the client side',
    async () => {
      const s = (await request(statsPort, { path: '/stats/prometheus' })).body;
      return sourceRequests(s, '418') >= 1 && sourceRequests(s, '200') >= 1 ? s : undefined;
    },
  );
  assert.ok(sourceRequests(stats, '418') >= 1);

  // https inside a tunnel to a TLS port of the mesh: through that port's TCP/TLS chain.
  const secure = await appFetch(out, 'https://secure.example.com:8443/', {}, { NODE_EXTRA_CA_CERTS: path.join(dir, 'root.pem') });
  assert.equal(secure.status, 200);
  assert.equal(secure.body, 'secure hello');
  const listeners = (await request(adminPort, { path: '/stats?filter=_8443.downstream_cx_total' })).body;
  assert.match(listeners, /^listener\.[0-9.]+_8443\.downstream_cx_total: [1-9]/m, listeners);

  // Outside the mesh: passed through as before.
  const outside = await appFetch(out, `http://localhost:${outsidePort}/`, {});
  assert.equal(outside.status, 200);
  assert.equal(outside.body, 'outside');
});
