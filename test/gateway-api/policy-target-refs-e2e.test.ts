// Policies attached to a Gateway API Gateway with targetRefs, through real processes: `rig
// controlplane` watching a config directory, a `rig proxy --mode router` labelled
// gateway.networking.k8s.io/gateway-name: shop, an HTTP upstream behind an HTTPRoute and a JWKS
// server. An AuthorizationPolicy targeting Gateway shop denies /admin; a RequestAuthentication and
// an ALLOW policy on requestPrincipals, both targeting shop, guard /secure (401 for a bad token,
// 403 without one or for another subject, 200 for alice). A DENY-everything policy targeting a
// Gateway that does not exist changes nothing and is reported in the control plane's log.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { freePort } from '../../src/local/ports.ts';
import { serviceEntry, startGatewayApiGateway } from '../helpers/edge-gateway.ts';
import { startControlPlaneProcess } from '../helpers/mesh-control-plane.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const ISS = 'https://issuer.test';
const TARGET_SHOP = 'targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: shop }]';

const mesh = (upstreamPort: number) => `${serviceEntry('shop', upstreamPort)}apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: shop }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 8080, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop }
spec:
  parentRefs: [{ name: shop }]
  rules: [{ backendRefs: [{ name: shop, port: 80 }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all-on-other }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: other }]
  action: DENY
  rules: [{}]
`;

const DENY_ADMIN = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin }
spec:
  ${TARGET_SHOP}
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
`;

const jwt = (jwksUri: string) => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: shop-jwt }
spec:
  ${TARGET_SHOP}
  jwtRules: [{ issuer: "${ISS}", jwksUri: "${jwksUri}" }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: secure-for-alice }
spec:
  ${TARGET_SHOP}
  action: ALLOW
  rules:
  - from: [{ source: { requestPrincipals: ["${ISS}/alice"] } }]
    to: [{ operation: { paths: ["/secure*"] } }]
  - to: [{ operation: { notPaths: ["/secure*"] } }]
`;

/** Writes a config file whole (rename), so the control plane never reads half of it. */
function writeConfig(dir: string, name: string, text: string): void {
  const tmp = path.join(dir, '..', `.${name}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, name));
}

async function jwksServer(keys: unknown[]): Promise<{ uri: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  return { uri, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

test('AuthorizationPolicy and RequestAuthentication attached to a Gateway API Gateway with targetRefs', async (t) => {
  const upstream = await startUpstream('shop');
  t.after(() => upstream.close());
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const { privateKey: otherKey } = await generateKeyPair('RS256', { extractable: true });
  const jwks = await jwksServer([{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }]);
  t.after(() => jwks.close());
  const token = (sub: string, key = privateKey) =>
    new SignJWT({ sub })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISS)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(key);

  const cp = await startControlPlaneProcess(t, tempDir(t, 'rig-targetrefs-e2e-'), mesh(upstream.port));

  const port = await freePort();
  const gateway = await startGatewayApiGateway(t, cp.xds, 'shop', { 8080: port });
  const get = async (p: string, headers: Record<string, string> = {}) => (await request(port, { path: p, headers: { host: 'shop.example.com', ...headers } }).catch(() => ({ status: 0 }))).status;
  const becomes = (p: string, status: number, headers: Record<string, string> = {}) =>
    waitFor(() => `${p} answering ${status}\n${gateway.log()}\n${cp.log()}`, async () => ((await get(p, headers)) === status ? true : undefined), 60_000);

  // The policy targeting Gateway "other" denies nothing here, and the control plane says why.
  await becomes('/admin', 200);
  await waitFor(() => `the control plane's warning about Gateway "other"\n${cp.log()}`, () => (/deny-all-on-other: spec\.targetRefs\[0\]\.name: Gateway \\?"other\\?" .*not found in namespace default/.test(cp.log()) ? true : undefined), 60_000);

  writeConfig(cp.configDir, 'deny-admin.yaml', DENY_ADMIN);
  await becomes('/admin', 403);
  assert.equal(await get('/admin/users'), 403);
  assert.equal(await get('/'), 200);
  assert.equal(await get('/public'), 200);

  writeConfig(cp.configDir, 'jwt.yaml', jwt(jwks.uri));
  await becomes('/secure', 403);
  // The control plane fetches the JWKS once it sees the jwksUri, then pushes the keys.
  await becomes('/secure', 200, { authorization: `Bearer ${await token('alice')}` });
  const seen = upstream.requests.length;
  assert.equal(await get('/secure'), 403, 'no token: no request principal');
  assert.equal(await get('/secure', { authorization: `Bearer ${await token('alice', otherKey)}` }), 401, 'a token the JWKS does not verify');
  assert.equal(await get('/secure', { authorization: `Bearer ${await token('bob')}` }), 403, 'another subject');
  assert.equal(await get('/'), 200);
  assert.equal(await get('/admin', { authorization: `Bearer ${await token('alice')}` }), 403, 'the DENY policy still applies');
  assert.deepEqual(upstream.requests.slice(seen).map((r) => r.url), ['/'], 'the refused requests never reached the upstream');
});
