// A Gateway API Gateway and HTTPRoute through real processes: `rig controlplane` watching a
// config directory, a `rig proxy --mode router` labelled gateway.networking.k8s.io/gateway-name
// as Istio's automated deployment labels its gateway pods, and two HTTP upstreams. Requests are
// routed by path and header, split by weight, get their headers modified, a backend that does
// not exist answers 500, and an HTTPS listener terminates TLS with its certificateRefs' credential.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import { test } from 'node:test';
import { makeTaskCertificates } from '../helpers/istio-task-certs.ts';
import { freePort } from '../../src/local/ports.ts';
import { serviceEntry, startGatewayApiGateway } from '../helpers/edge-gateway.ts';
import { startControlPlaneProcess } from '../helpers/mesh-control-plane.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: shop }
spec:
  gatewayClassName: istio
  listeners:
  - { name: http, port: 8080, protocol: HTTP }
  - { name: https, port: 8443, protocol: HTTPS, hostname: shop.example.com, tls: { mode: Terminate, certificateRefs: [{ name: shop-cert }] } }
  - { name: mtls, port: 9443, protocol: HTTPS, hostname: shop.example.com, tls: { mode: Terminate, certificateRefs: [{ name: shop-mtls }], options: { gateway.istio.io/tls-terminate-mode: MUTUAL } } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop }
spec:
  parentRefs: [{ name: shop }]
  hostnames: [shop.example.com]
  rules:
  - matches: [{ path: { type: PathPrefix, value: /v2 } }]
    filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: x-gateway, value: shop }], remove: [x-secret] } }]
    backendRefs: [{ name: v2, port: 80 }]
  - matches: [{ headers: [{ name: x-canary, value: "true" }] }]
    backendRefs: [{ name: v2, port: 80 }]
  - matches: [{ path: { type: Exact, value: /split } }]
    backendRefs: [{ name: v1, port: 80, weight: 50 }, { name: v2, port: 80, weight: 50 }]
  - matches: [{ path: { type: Exact, value: /missing } }]
    backendRefs: [{ name: nowhere, port: 80 }]
  - filters: [{ type: ResponseHeaderModifier, responseHeaderModifier: { add: [{ name: x-route, value: default }] } }]
    backendRefs: [{ name: v1, port: 80 }]
`;

test('rig controlplane + rig proxy --mode router serve a Gateway and its HTTPRoute', async (t) => {
  const [v1, v2] = await Promise.all([startUpstream('v1'), startUpstream('v2')]);
  t.after(() => Promise.all([v1.close(), v2.close()]));
  const dir = tempDir(t, 'rig-gwapi-e2e-');
  const state = path.join(dir, 'state');
  const caPem = makeTaskCertificates(dir, path.join(state, 'credentials', 'shop-cert'), 'shop.example.com', 'shop');
  // Istio's Secure Gateways task, mutual TLS: the secret also holds ca.crt; a client certificate of that CA.
  fs.cpSync(path.join(state, 'credentials', 'shop-cert'), path.join(state, 'credentials', 'shop-mtls'), { recursive: true });
  fs.writeFileSync(path.join(state, 'credentials', 'shop-mtls', 'ca.crt'), caPem);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  openssl('req', '-out', 'client.csr', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-subj', '/CN=client.example.com/O=client organization');
  openssl('x509', '-req', '-sha256', '-days', '1', '-CA', 'example.com.crt', '-CAkey', 'example.com.key', '-set_serial', '1', '-in', 'client.csr', '-out', 'client.crt');
  const client = { cert: fs.readFileSync(path.join(dir, 'client.crt')), key: fs.readFileSync(path.join(dir, 'client.key')) };
  const cp = await startControlPlaneProcess(t, dir, serviceEntry('v1', v1.port) + serviceEntry('v2', v2.port) + GATEWAY);

  const [port, tlsPort, mtlsPort] = [await freePort(), await freePort(), await freePort()];
  const gateway = await startGatewayApiGateway(t, cp.xds, 'shop', { 8080: port, 8443: tlsPort, 9443: mtlsPort });
  const get = (p: string, headers: Record<string, string> = {}) => request(port, { path: p, headers: { host: 'shop.example.com', ...headers } });
  const home = await waitFor(
    () => `the gateway routing / to v1\n${gateway.log()}\n${cp.log()}`,
    async () => {
      const r = await get('/').catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    },
    60_000,
  );
  assert.equal(home.json().server, 'v1');
  assert.equal(home.headers['x-route'], 'default', 'ResponseHeaderModifier');

  // By path (whole path elements: /v2x is not under /v2), with a request header modifier.
  const byPath = await get('/v2/items', { 'x-secret': 'hunter2' });
  assert.equal(byPath.json().server, 'v2');
  assert.equal(byPath.json().headers['x-gateway'], 'shop');
  assert.equal(byPath.json().headers['x-secret'], undefined);
  assert.equal((await get('/v2x')).json().server, 'v1');
  // By header.
  assert.equal((await get('/anything', { 'x-canary': 'true' })).json().server, 'v2');
  assert.equal((await get('/anything', { 'x-canary': 'false' })).json().server, 'v1');
  // Weighted 50/50: 40 requests reach both (all 40 on one side has a probability of 2^-39).
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) seen.add((await get('/split')).json().server);
  assert.deepEqual([...seen].sort(), ['v1', 'v2']);
  // A backend that does not exist: 500, as the Gateway API requires; another host: no route (404).
  assert.equal((await get('/missing')).status, 500);
  assert.equal((await request(port, { path: '/', headers: { host: 'other.example.com' } })).status, 404);
  assert.match(cp.log(), /ResolvedRefs=False \(BackendNotFound\): backend Service default\/nowhere does not exist/);
  // HTTPS: TLS terminated with the shop-cert credential, then the same routes.
  const secure = await waitFor(
    () => `the HTTPS listener serving\n${gateway.log()}`,
    () =>
      new Promise<{ status: number; server: string } | undefined>((resolve) => {
        const req = https.request({ host: '127.0.0.1', port: tlsPort, path: '/v2/x', servername: 'shop.example.com', ca: caPem, headers: { host: 'shop.example.com' }, agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(res.statusCode === 200 ? { status: 200, server: (JSON.parse(body) as { server: string }).server } : undefined));
        });
        req.on('error', () => resolve(undefined));
        req.end();
      }),
    60_000,
  );
  assert.deepEqual(secure, { status: 200, server: 'v2' });
  // tls-terminate-mode MUTUAL: a client without a certificate is refused, one with a certificate of ca.crt served.
  const mutual = (cert?: { cert: Buffer; key: Buffer }) =>
    new Promise<string>((resolve) => {
      const req = https.request({ host: '127.0.0.1', port: mtlsPort, path: '/v2/x', servername: 'shop.example.com', ca: caPem, headers: { host: 'shop.example.com' }, agent: false, ...cert }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
      req.end();
    });
  assert.equal(await waitFor(() => `the mutual TLS listener serving\n${gateway.log()}`, async () => ((await mutual(client)) === '200' ? '200' : undefined), 60_000), '200');
  assert.match(await mutual(), /^error /, 'no client certificate: refused');
  // The control plane's config debug endpoint shows the kinds as written.
  const configz = (await request(cp.monitoring, { path: '/debug/configz' })).json<{ apiVersion: string; kind: string }[]>();
  assert.deepEqual(configz.filter((r) => r.apiVersion.startsWith('gateway.networking.k8s.io/')).map((r) => r.kind).sort(), ['Gateway', 'HTTPRoute']);
});
