// RequestAuthentication end to end: YAML → generated jwt_authn + RBAC → the real proxy, with a
// JWKS server on 127.0.0.1:0 whose keys the test rotates and breaks. Each bad token gets Istio's
// (Envoy's) answer; a request without a token passes authentication and is left to authorization.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { JWT_AUTHN_TYPE } from '../../src/envoy/index.ts';
import { configure, httpListener, LISTENER_TYPE, ROUTER, routeConfig, startRuntime } from '../proxy/harness.ts';
import { startSidecar } from './sidecar-harness.ts';
import { jwksResolver } from '../../src/xds/translate/security/jwks-resolver.ts';

const ISS = 'https://issuer.test';

interface Jwks {
  url: string;
  port: number;
  keys: JWK[];
  fetches: number;
  /** Host headers of the JWKS requests. */
  hosts: string[];
  failing: boolean;
  close(): Promise<void>;
}

/** A JWKS server; it also answers OpenID discovery for the issuer http://127.0.0.1:<port>. */
async function jwksServer(): Promise<Jwks> {
  const j: Jwks = { url: '', port: 0, keys: [], fetches: 0, hosts: [], failing: false, close: async () => undefined };
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: `http://127.0.0.1:${j.port}`, jwks_uri: j.url }));
      return;
    }
    j.fetches++;
    j.hosts.push(req.headers.host ?? '');
    if (j.failing) {
      res.writeHead(500).end('down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: j.keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  j.port = (server.address() as AddressInfo).port;
  j.url = `http://127.0.0.1:${j.port}/jwks.json`;
  j.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return j;
}

async function keyPair(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { jwk, privateKey, kid };
}

type Key = Awaited<ReturnType<typeof keyPair>>;

async function token(key: Key, claims: Record<string, unknown> = {}, opts: { iss?: string; aud?: string | string[]; exp?: number; nbf?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ sub: 'alice', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .setIssuer(opts.iss ?? ISS)
    .setAudience(opts.aud ?? 'httpbin')
    .setIssuedAt(now - 10)
    .setExpirationTime(opts.exp ?? now + 3600);
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(key.privateKey);
}

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

/** The JWKS host as a mesh service (ServiceEntry): the proxy fetches its keys through outbound|80||jwks.test. */
const JWKS_CLUSTER = 'outbound|80||jwks.test';
function jwksServiceEntry(port: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: jwks, namespace: foo }
spec:
  hosts: [jwks.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]
---`;
}

function yaml(jwksUri: string, extra = ''): string {
  return `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  jwtRules:
  - issuer: ${ISS}
    jwksUri: ${jwksUri}
    audiences: [httpbin, other-aud]
${extra}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: secure-needs-jwt, namespace: foo }
spec:
  action: DENY
  rules:
  - from: [{ source: { notRequestPrincipals: ["*"] } }]
    to: [{ operation: { paths: ["/secure*"] } }]
`;
}

test('JWT: each bad token gets its answer, missing tokens are left to authorization, JWKS refresh on unknown kid', async (t) => {
  const jwks = await jwksServer();
  const s = await startSidecar();
  t.after(async () => {
    await s.close();
    await jwks.close();
  });
  const k1 = await keyPair('k1');
  const k2 = await keyPair('k2');
  const stranger = await keyPair('k1'); // same kid, another key: a forged signature
  jwks.keys = [k1.jwk];
  const listeners = await s.configure(jwksServiceEntry(jwks.port) + yaml('http://jwks.test/jwks.json'), { outbound: [JWKS_CLUSTER] });
  assert.match(JSON.stringify(listeners), /"remote_jwks":\{"http_uri":\{"uri":"http:\/\/jwks.test\/jwks.json","cluster":"outbound\|80\|\|jwks.test"/);
  const now = Math.floor(Date.now() / 1000);
  const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });
  const call = (tok: string | undefined, path = '/secure') => s.http({ path, headers: tok === undefined ? {} : bearer(tok) });

  const ok = await call(await token(k1));
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).headers.authorization, undefined, 'the token is not forwarded by default');

  const cases: [string, Promise<string>, number, string][] = [
    ['expired', token(k1, {}, { exp: now - 3600 }), 401, 'Jwt is expired'],
    ['not yet valid', token(k1, {}, { nbf: now + 3600 }), 401, 'Jwt not yet valid'],
    ['wrong issuer', token(k1, {}, { iss: 'https://evil.test' }), 401, 'Jwt issuer is not configured'],
    ['wrong audience', token(k1, {}, { aud: 'someone-else' }), 403, 'Audiences in Jwt are not allowed'],
    ['bad signature', token(stranger), 401, 'Jwt verification fails'],
    ['none algorithm', Promise.resolve(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: ISS, sub: 'alice', aud: 'httpbin', exp: now + 3600 })}.`), 401, 'Jwt header [alg] is not supported'],
    ['not a JWT', Promise.resolve('abc.def'), 401, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
  ];
  for (const [name, tok, status, body] of cases) {
    for (const path of ['/secure', '/public']) {
      const r = await call(await tok, path);
      assert.equal(r.status, status, `${name} on ${path}`);
      assert.equal(r.body, body, name);
      assert.equal(r.headers['www-authenticate'], `Bearer realm="http://httpbin.foo${path}", error="invalid_token"`, `${name} on ${path}`);
    }
  }
  // No token: authentication passes; the DENY policy refuses /secure only.
  assert.equal((await call(undefined, '/public')).status, 200);
  assert.equal((await call(undefined, '/secure')).status, 403);
  assert.equal(s.app.requests.filter((r) => r.url === '/secure').length, 1, 'only the valid token reached the app on /secure');

  // Unknown kid: the proxy fetches the JWKS again and then accepts the new key.
  const before = jwks.fetches;
  jwks.keys = [k1.jwk, k2.jwk];
  assert.equal((await call(await token(k2))).status, 200);
  assert.equal(jwks.fetches, before + 1);

  // The JWKS server fails: an unknown kid cannot be resolved, the last good keys still work.
  jwks.failing = true;
  const k3 = await keyPair('k3');
  const r3 = await call(await token(k3));
  assert.equal(r3.status, 401);
  assert.equal(r3.body, "Jwks doesn't have key to match kid or alg from Jwt");
  assert.equal(jwks.fetches, before + 2);
  assert.equal((await call(await token(k1))).status, 200);
  assert.equal((await call(await token(k2))).status, 200);
  const stat = s.h.rt.stats.all().find((x) => x.name === 'http.inbound_0.0.0.0_9080.jwt_authn.denied');
  assert.equal(stat?.value, 15);

  // Unknown kids are rate-limited: 20 tokens with new kids make at most 10 refreshes in a cache period.
  const mark = jwks.fetches;
  for (let i = 0; i < 20; i++) assert.equal((await call(await token({ ...k1, kid: `random-${i}` }))).status, 401);
  assert.ok(jwks.fetches - mark >= 1 && jwks.fetches - mark <= 10, `${jwks.fetches - mark} refreshes`);
  // Every fetch went through the cluster (Host from the URI, the cluster's connection counters).
  assert.ok(jwks.hosts.every((h) => h === 'jwks.test'), jwks.hosts.join());
  assert.ok((s.h.rt.stats.all().find((x) => x.name === `cluster.${JWKS_CLUSTER}.upstream_cx_total`)?.value ?? 0) >= 1);
});

test('JWT: a jwksUri outside the mesh, and OpenID discovery, are fetched by the control plane and inlined', async (t) => {
  const jwks = await jwksServer();
  const s = await startSidecar();
  t.after(async () => {
    await s.close();
    await jwks.close();
  });
  const k = await keyPair('cp');
  jwks.keys = [k.jwk];
  const issuer = `http://127.0.0.1:${jwks.port}`;
  const policy = (rule: string) => `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: foo }
spec:
  jwtRules: [${rule}]
`;
  const changed = () => new Promise<void>((resolve) => {
    const off = jwksResolver.onChange(() => {
      off();
      resolve();
    });
  });
  for (const rule of [`{ issuer: "${ISS}", jwksUri: "${jwks.url}" }`, `{ issuer: "${issuer}" }`]) {
    const iss = rule.includes('jwksUri') ? ISS : issuer;
    const tok = await token(k, {}, { iss });
    const arrived = changed();
    // First generation: keys not fetched yet, tokens refused (requests without one still pass).
    const first = await s.configure(policy(rule));
    assert.match(JSON.stringify(first), /"local_jwks":\{"inline_string":"\{\\"keys\\":\[\]\}"\}/);
    assert.equal((await s.http({ headers: { authorization: `Bearer ${tok}` } })).status, 401);
    assert.equal((await s.http({})).status, 200);
    // The fetch lands, the control plane would push: the next generation inlines the keys.
    await arrived;
    const second = await s.configure(policy(rule));
    assert.ok(JSON.stringify(second).includes(`\\"kid\\":\\"cp\\"`), 'the keys are inlined');
    assert.equal((await s.http({ headers: { authorization: `Bearer ${tok}` } })).status, 200, rule);
  }
});

test('JWT: token locations, forwarding, payload and claim headers, inline JWKS', async (t) => {
  const s = await startSidecar();
  t.after(() => s.close());
  const k = await keyPair('inline');
  const jwksInline = JSON.stringify({ keys: [k.jwk] });
  await s.configure(`
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: foo }
spec:
  jwtRules:
  - issuer: ${ISS}
    jwks: '${jwksInline}'
    fromHeaders: [{ name: x-jwt, prefix: "Token " }]
    fromParams: [tok]
    fromCookies: [session]
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{ header: x-sub, claim: sub }, { header: x-team, claim: team }]
`);
  const tok = await token(k, { team: 'blue' });
  const viaHeader = await s.http({ headers: { 'x-jwt': `Token ${tok}` } });
  assert.equal(viaHeader.status, 200);
  const echo = JSON.parse(viaHeader.body);
  assert.equal(echo.headers['x-jwt'], `Token ${tok}`, 'forwardOriginalToken keeps the token');
  assert.equal(echo.headers['x-sub'], 'alice');
  assert.equal(echo.headers['x-team'], 'blue');
  assert.equal(JSON.parse(Buffer.from(echo.headers['x-jwt-payload'], 'base64url').toString()).team, 'blue');
  assert.equal((await s.http({ path: `/q?tok=${tok}&a=1` })).status, 200);
  assert.equal((await s.http({ headers: { cookie: `a=b; session=${tok}` } })).status, 200);
  // The default Authorization location is not used once locations are configured: the token there is ignored.
  assert.equal((await s.http({ headers: { authorization: 'Bearer garbage' } })).status, 200);
  assert.equal((await s.http({ headers: { 'x-jwt': 'Token garbage.x.y' } })).status, 401);
  assert.equal((await s.http({ path: '/q?tok=garbage.x.y' })).status, 401);
});

test('JWT claims in AuthorizationPolicy: requestPrincipals, request.auth.claims/audiences/presenter/principal, experimental metadata', async (t) => {
  const s = await startSidecar();
  t.after(() => s.close());
  const k = await keyPair('c');
  await s.configure(`
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: istio-system }
spec:
  jwtRules: [{ issuer: "${ISS}", jwks: '${JSON.stringify({ keys: [k.jwk] })}' }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: jwt-rules, namespace: foo }
spec:
  rules:
  - from: [{ source: { requestPrincipals: ["${ISS}/alice"] } }]
    to: [{ operation: { paths: ["/principal"] } }]
  - from: [{ source: { requestPrincipals: ["*"], notRequestPrincipals: ["${ISS}/mallory"] } }]
    to: [{ operation: { paths: ["/any-but-mallory"] } }]
  - to: [{ operation: { paths: ["/claims"] } }]
    when: [{ key: "request.auth.claims[groups]", values: ["admins"] }, { key: "request.auth.claims[org][name]", values: ["acme"] }]
  - to: [{ operation: { paths: ["/aud"] } }]
    when: [{ key: request.auth.audiences, values: ["aud2"] }, { key: request.auth.presenter, values: ["web-*"] }, { key: request.auth.principal, values: ["*/alice"] }]
  - to: [{ operation: { paths: ["/meta"] } }]
    when: [{ key: "experimental.envoy.filters.http.jwt_authn[${ISS}][sub]", values: ["alice"] }]
`);
  const alice = await token(k, { groups: ['dev', 'admins'], org: { name: 'acme' }, azp: 'web-app' }, { aud: ['aud1', 'aud2'] });
  const bob = await token(k, { sub: 'bob', groups: ['dev'] });
  const mallory = await token(k, { sub: 'mallory' });
  const call = (path: string, tok?: string) => s.http({ path, headers: tok ? { authorization: `Bearer ${tok}` } : {} });
  const expect: [string, string | undefined, number][] = [
    ['/principal', alice, 200],
    ['/principal', bob, 403],
    ['/principal', undefined, 403],
    ['/any-but-mallory', bob, 200],
    ['/any-but-mallory', mallory, 403],
    ['/any-but-mallory', undefined, 403],
    ['/claims', alice, 200],
    ['/claims', bob, 403],
    ['/aud', alice, 200],
    ['/aud', bob, 403],
    ['/meta', alice, 200],
    ['/meta', bob, 403],
  ];
  for (const [path, tok, want] of expect) assert.equal((await call(path, tok)).status, want, `${path} ${tok === alice ? 'alice' : tok === bob ? 'bob' : tok ? 'mallory' : 'no token'}`);
});

test('jwt_authn: a required token that is missing gets 401 "Jwt is missing" and www-authenticate without an error, as Envoy', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const k = await keyPair('k');
  const jwt = { providers: { p: { issuer: ISS, local_jwks: { inline_string: JSON.stringify({ keys: [k.jwk] }) } } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] };
  const listener = httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]), { http_filters: [{ name: 'envoy.filters.http.jwt_authn', typed_config: { '@type': JWT_AUTHN_TYPE, ...jwt } }, ROUTER] });
  await configure(h, { listeners: [listener] });
  const call = (headers: http.OutgoingHttpHeaders) =>
    new Promise<http.IncomingMessage & { body: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: h.port('l'), path: '/api?x=1', headers: { host: 'svc.test', ...headers } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(Object.assign(res, { body })));
      });
      req.on('error', reject);
    });
  const missing = await call({});
  assert.equal(missing.statusCode, 401);
  assert.equal(missing.body, 'Jwt is missing');
  assert.equal(missing.headers['www-authenticate'], 'Bearer realm="http://svc.test/api?x=1"');
  const bad = await call({ authorization: 'Bearer abc.def' });
  assert.equal(bad.statusCode, 401);
  assert.equal(bad.headers['www-authenticate'], 'Bearer realm="http://svc.test/api?x=1", error="invalid_token"');
  assert.equal((await call({ authorization: `Bearer ${await token(k)}` })).statusCode, 200);
});

test('jwt_authn config errors are refused with the field path', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const listener = (cfg: Record<string, unknown>) =>
    httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]), { http_filters: [{ name: 'envoy.filters.http.jwt_authn', typed_config: { '@type': JWT_AUTHN_TYPE, ...cfg } }, ROUTER] });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ providers: { p: { issuer: ISS, local_jwks: { inline_string: 'not json' } } } }, /providers.p.local_jwks: JWKS is not JSON/],
    [{ providers: { p: { issuer: ISS, local_jwks: { inline_string: '{"keys":[{"n":"x"}]}' } } } }, /every JWKS key needs a "kty"/],
    [{ providers: { p: { issuer: ISS } } }, /providers.p: a provider needs remote_jwks or local_jwks/],
    [{ providers: { p: { issuer: ISS, remote_jwks: { http_uri: { uri: 'ftp://x', cluster: 'c', timeout: '1s' } } } } }, /remote_jwks needs an http\(s\) uri/],
    [{ providers: { p: { issuer: ISS, remote_jwks: { http_uri: { uri: 'http://x/jwks', timeout: '1s' } } } } }, /http_uri.cluster: remote_jwks needs the cluster the JWKS is fetched through/],
    [{ providers: { p: { issuer: ISS, local_jwks: { inline_string: '{"keys":[]}' } } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'q' } }] }, /rules\[0\].requires.provider_name: unknown provider "q"/],
    [{ rules: [{ match: { prefix: '/' }, requirement_name: 'nope' }] }, /no requirement named "nope"/],
  ];
  for (const [cfg, msg] of bad) assert.match(h.apply(LISTENER_TYPE, [listener(cfg)]).join('\n'), msg);
});
