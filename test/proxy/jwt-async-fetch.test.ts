// jwt_authn remote_jwks as Envoy fetches it ahead (async_fetch) and retries it (retry_policy), with
// a JWKS server on 127.0.0.1:0 that counts its fetches, can hold its answers, fail the first ones
// and rotate its key: the keys are fetched when the listener goes in (before any request); a
// `rig proxy -c` listener is not bound nor the proxy ready until the JWKS answered (fast_listener
// false), bound at once with fast_listener; a key rotated on the server is picked up after
// cache_duration by a background fetch; a failed fetch is fetched again after
// failed_refetch_duration; a fetch answered 503 is retried per retry_policy. On demand, as Envoy: a
// request after a failed fetch fetches again rather than failing at once (with async_fetch too,
// while there are no keys), and expired keys are fetched again for the request, which fails when
// that fetch fails.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { test, type TestContext } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { JWT_AUTHN_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { freePort } from '../../src/local/ports.ts';
import { spawnRig, stopProcess } from '../helpers/cli.ts';
import { listenLocal } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { CLUSTER_TYPE, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster, type Reply } from './harness.ts';

const ISS = 'https://issuer.test';
const KID = 'k1';

async function signer() {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
  const token = () => new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'RS256', kid: KID }).setIssuer(ISS).setIssuedAt().setExpirationTime('1h').sign(privateKey);
  return { jwk, token };
}

/**
 * A JWKS server: counts fetches, never answers the first `unanswered` (counting those whose
 * connection closed), fails the next `failFirst` (500 and 503 in turn, or `failStatus`), holds
 * answers while `held`.
 */
function jwksServer(keys: JWK[]) {
  const j = { keys, fetches: 0, unanswered: 0, closedUnanswered: 0, failFirst: 0, failStatus: 0, held: undefined as Promise<void> | undefined, release: () => undefined as void };
  const server = http.createServer((_req, res) => {
    const n = ++j.fetches;
    if (n <= j.unanswered) {
      res.once('close', () => j.closedUnanswered++);
      return;
    }
    void (j.held ?? Promise.resolve()).then(() => {
      if (n <= j.failFirst) res.writeHead(j.failStatus || (n % 2 ? 500 : 503)).end('down');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: j.keys }));
    });
  });
  const hold = () => {
    j.held = new Promise<void>((r) => (j.release = r));
  };
  const release = () => {
    j.release();
    j.held = undefined;
  };
  return { j, server, hold, release };
}

/** An in-process proxy runtime with clusters app (an upstream) and jwks (the JWKS server, listening until the test ends). */
async function runtimeWithJwks(t: TestContext, jwks: ReturnType<typeof jwksServer>) {
  const jwksPort = await listenLocal(jwks.server, t);
  t.after(() => jwks.server.closeAllConnections());
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [app.port]), staticCluster('jwks', [jwksPort])]), []);
  return h;
}

function jwtFilter(remoteJwks: EnvoyJson): EnvoyJson {
  return {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: {
      '@type': JWT_AUTHN_TYPE,
      providers: { p: { issuer: ISS, remote_jwks: { http_uri: { uri: 'http://jwks.test/keys', cluster: 'jwks', timeout: '5s' }, ...remoteJwks } } },
      rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }],
    },
  };
}

const listenerWith = (remoteJwks: EnvoyJson, extra: EnvoyJson = {}) => httpListener('in', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [jwtFilter(remoteJwks), ROUTER] }, extra);
const authed = async (port: number, token: string): Promise<Reply> => request(port, { headers: { authorization: `Bearer ${token}` } });

test('async_fetch: a rig proxy fetches the JWKS before any request, and its listener is not bound, nor the proxy ready, until the JWKS answered', async (t) => {
  const dir = tempDir(t, 'rig-jwks-');
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.hold();
  const jwksPort = await listenLocal(jwks.server, t);
  t.after(() => jwks.server.closeAllConnections());
  const app = await startUpstream('app');
  t.after(() => app.close());
  const [listenerPort, adminPort] = [await freePort(), await freePort()];
  const bootstrap = {
    static_resources: {
      listeners: [listenerWith({ async_fetch: {} }, { address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } } })],
      clusters: [staticCluster('app', [app.port]), staticCluster('jwks', [jwksPort])],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const child = spawnRig(['proxy', '-c', file, '--admin-port', String(adminPort), '--stats-port', '0']);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.after(() => stopProcess(child));
  const admin = (p: string) => fetch(`http://127.0.0.1:${adminPort}${p}`).then(async (r) => ({ status: r.status, body: await r.text() }));

  await waitFor(() => `the JWKS fetched with no request sent\n${log}`, async () => (jwks.j.fetches === 1 && (await admin('/ready')) ? true : undefined), 60_000);
  assert.deepEqual(await admin('/ready'), { status: 503, body: 'INITIALIZING\n' });
  const refused = await request(listenerPort).catch((e: NodeJS.ErrnoException) => e.code);
  assert.equal(refused, 'ECONNREFUSED', 'the listener warms (not bound) while the JWKS is fetched');

  jwks.release();
  await waitFor(() => `the proxy ready\n${log}`, async () => ((await admin('/ready')).status === 200 ? true : undefined));
  const r = await authed(listenerPort, await key.token());
  assert.equal(r.status, 200, r.body);
  assert.equal(jwks.j.fetches, 1, 'the request used the keys fetched ahead');
});

test('async_fetch with fast_listener: the listener serves at once while the JWKS is fetched', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.hold();
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ async_fetch: { fast_listener: true } })]), []);
  await h.rt.settled();
  assert.ok(h.port('in') > 0, 'bound without waiting for the JWKS');
  await waitFor('the JWKS fetched with no request sent', () => (jwks.j.fetches === 1 ? true : undefined));
  jwks.release();
  const r = await authed(h.port('in'), await key.token());
  assert.equal(r.status, 200, r.body);
  assert.equal(jwks.j.fetches, 1);
});

test('async_fetch: a key rotated on the JWKS server is fetched in the background after cache_duration; the request meets the new key without waiting', async (t) => {
  const [one, two] = [await signer(), await signer()];
  const jwks = jwksServer([one.jwk]);
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ async_fetch: {}, cache_duration: '1s' })]), []);
  await h.rt.settled();
  assert.equal(jwks.j.fetches, 1, 'fetched while the listener warmed');
  assert.equal((await authed(h.port('in'), await one.token())).status, 200);

  // The same kid, another key: only a fetch of the JWKS lets the new tokens verify.
  jwks.j.keys = [two.jwk];
  const rotatedAt = jwks.j.fetches;
  // Two fetches after the rotation: the first of them (the keys rotated) has been answered and applied.
  await waitFor('background fetches after the rotation', () => (jwks.j.fetches > rotatedAt + 1 ? true : undefined));
  // Every later fetch is held: a request that waited for one would not be answered.
  jwks.hold();
  const r = await authed(h.port('in'), await two.token());
  assert.equal(r.status, 200, r.body);
  assert.equal((await authed(h.port('in'), await one.token())).status, 401, 'the old key is gone');
  jwks.release();
});

test('async_fetch: a failed fetch is fetched again after failed_refetch_duration, with no request; the listener warmed once the first fetch failed', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.j.failFirst = 3;
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ async_fetch: { failed_refetch_duration: '0.1s' } })]), []);
  await h.rt.settled();
  assert.ok(h.port('in') > 0, 'in service after the first fetch failed');
  await waitFor('the fetch that succeeds, with no request sent', () => (jwks.j.fetches === 4 ? true : undefined));
  const r = await authed(h.port('in'), await key.token());
  assert.equal(r.status, 200, r.body);
  assert.equal(jwks.j.fetches, 4, 'no more fetches once one succeeded (cache_duration 10 min)');
  assert.equal(h.rt.stats.counter('http.in.jwt_authn.jwks_fetch_failed').value, 3);
  assert.equal(h.rt.stats.counter('http.in.jwt_authn.jwks_fetch_success').value, 1);
});

test('remote_jwks retry_policy: a fetch answered 5xx is retried num_retries times', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.j.failFirst = 2;
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ retry_policy: { num_retries: 2, retry_back_off: { base_interval: '0.01s', max_interval: '0.05s' } } })]), []);
  await h.rt.settled();
  assert.equal(jwks.j.fetches, 0, 'without async_fetch, fetched on the first request that needs it');
  const r = await authed(h.port('in'), await key.token());
  assert.equal(r.status, 200, r.body);
  assert.equal(jwks.j.fetches, 3, 'two failed tries, then the keys');
});

test('remote_jwks retry_policy: as Envoy (retry_on 5xx,gateway-error,connect-failure,reset), a 404 is not retried', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.j.failFirst = 1;
  jwks.j.failStatus = 404;
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ retry_policy: { num_retries: 3, retry_back_off: { base_interval: '0.01s' } } })]), []);
  await h.rt.settled();
  const first = await authed(h.port('in'), await key.token());
  assert.deepEqual([first.status, first.body], [401, 'Jwks remote fetch is failed'], 'the 404 is final');
  assert.equal(jwks.j.fetches, 1, 'one try: a 404 is not retried');
  assert.equal(h.rt.stats.counter('http.in.jwt_authn.jwks_fetch_failed').value, 1);
  const r = await authed(h.port('in'), await key.token());
  assert.equal(r.status, 200, r.body);
  assert.equal(jwks.j.fetches, 2, 'the next request fetches again');
});

test('remote_jwks retry_policy: a connection reset before any answer is retried', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  let resets = 1;
  jwks.server.prependListener('request', (req) => {
    if (resets-- > 0) req.socket.destroy();
  });
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ retry_policy: { retry_back_off: { base_interval: '0.01s' } } })]), []);
  await h.rt.settled();
  const r = await authed(h.port('in'), await key.token());
  assert.equal(r.status, 200, r.body);
  assert.equal(jwks.j.fetches, 2, 'a reset, then the keys (num_retries 1 by default in a retry_policy)');
  assert.equal(h.rt.stats.counter('http.in.jwt_authn.jwks_fetch_failed').value, 0, 'one fetch, its retry included');
});

test('remote_jwks retry_policy: as Envoy, each try is cut at max_interval (the per-try timeout of the converted policy) and retried within http_uri.timeout', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.j.unanswered = 1;
  const h = await runtimeWithJwks(t, jwks);
  const http_uri = { uri: 'http://jwks.test/keys', cluster: 'jwks', timeout: '30s' };
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ http_uri, retry_policy: { num_retries: 1, retry_back_off: { base_interval: '0.01s', max_interval: '0.2s' } } })]), []);
  await h.rt.settled();
  const reply = authed(h.port('in'), await key.token());
  await waitFor('the unanswered try cut (its connection closed) well before http_uri.timeout', () => (jwks.j.closedUnanswered === 1 ? true : undefined));
  const r = await reply;
  assert.equal(r.status, 200, r.body);
  assert.equal(jwks.j.fetches, 2, 'the cut try, then the keys');
});

test('remote_jwks retry_policy: as Envoy, http_uri.timeout bounds the whole fetch: a try that used it up is not retried', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.j.unanswered = 1;
  const h = await runtimeWithJwks(t, jwks);
  const http_uri = { uri: 'http://jwks.test/keys', cluster: 'jwks', timeout: '0.3s' };
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ http_uri, retry_policy: { num_retries: 3, retry_back_off: { base_interval: '5s' } } })]), []);
  await h.rt.settled();
  const first = await authed(h.port('in'), await key.token());
  assert.deepEqual([first.status, first.body], [401, 'Jwks remote fetch is failed'], 'the one try timed out at http_uri.timeout: no retry after it');
  assert.equal(jwks.j.fetches, 1);
  assert.equal(h.rt.stats.counter('http.in.jwt_authn.jwks_fetch_failed').value, 1);
});

test('remote_jwks retry_policy: a max_interval below base_interval is refused', async (t) => {
  const h = await startTestRuntime(t);
  const errs = h.apply(LISTENER_TYPE, [listenerWith({ retry_policy: { retry_back_off: { base_interval: '2s', max_interval: '1s' } } })]);
  assert.match(errs.join('\n'), /retry_policy\.retry_back_off\.max_interval: max_interval \(1000 ms\) must be at least base_interval \(2000 ms\)/);
});

test('async_fetch: the background fetches stop once the listener using the JWKS is removed and its config collected', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ async_fetch: {}, cache_duration: '0.1s' })]), []);
  await h.rt.settled();
  await waitFor('background fetches', () => (jwks.j.fetches >= 3 ? true : undefined));
  assert.deepEqual(h.apply(LISTENER_TYPE, []), []);
  await h.rt.settled();
  // Collected, the config's lease stops the refresh: no fetch in 10 cache periods (a fetch every 0.1 s before).
  await waitFor('no fetch for 1 s after a collection', async () => {
    gc();
    const before = jwks.j.fetches;
    await new Promise((r) => setTimeout(r, 1000));
    return jwks.j.fetches === before ? true : undefined;
  });
});

const fetchStats = (h: Awaited<ReturnType<typeof runtimeWithJwks>>) => ({
  failed: h.rt.stats.counter('http.in.jwt_authn.jwks_fetch_failed').value,
  success: h.rt.stats.counter('http.in.jwt_authn.jwks_fetch_success').value,
});

test('remote_jwks on demand: the request after a failed fetch fetches the JWKS again rather than failing at once; each fetch counts once', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.j.failFirst = 1;
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({})]), []);
  await h.rt.settled();
  const first = await authed(h.port('in'), await key.token());
  assert.deepEqual([first.status, first.body], [401, 'Jwks remote fetch is failed'], 'no retry_policy: the one try failed');
  const second = await authed(h.port('in'), await key.token());
  assert.equal(second.status, 200, second.body);
  assert.equal(jwks.j.fetches, 2, 'the second request fetched the JWKS');
  assert.deepEqual(fetchStats(h), { failed: 1, success: 1 });
});

test('async_fetch: while every fetch so far failed, a request fetches the JWKS on demand (failed_refetch_duration paces only the background fetches)', async (t) => {
  const key = await signer();
  const jwks = jwksServer([key.jwk]);
  jwks.j.failFirst = 1;
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ async_fetch: { failed_refetch_duration: '600s' } })]), []);
  await h.rt.settled();
  assert.equal(jwks.j.fetches, 1, 'the fetch ahead failed');
  const r = await authed(h.port('in'), await key.token());
  assert.equal(r.status, 200, r.body);
  assert.equal(jwks.j.fetches, 2);
  assert.deepEqual(fetchStats(h), { failed: 1, success: 1 });
});

test('remote_jwks on demand: expired keys are not used; the request waits for a fetch, and fails when that fetch fails', async (t) => {
  const [one, two] = [await signer(), await signer()];
  const jwks = jwksServer([one.jwk]);
  const h = await runtimeWithJwks(t, jwks);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listenerWith({ cache_duration: '0.2s' })]), []);
  await h.rt.settled();
  assert.equal((await authed(h.port('in'), await one.token())).status, 200);
  const expire = () => new Promise((r) => setTimeout(r, 300));

  // The same kid, another key: only a fetch made for the request lets the new token verify.
  jwks.j.keys = [two.jwk];
  await expire();
  const rotated = await authed(h.port('in'), await two.token());
  assert.equal(rotated.status, 200, rotated.body);
  assert.equal(jwks.j.fetches, 2);

  jwks.j.failFirst = jwks.j.fetches + 1;
  await expire();
  const failed = await authed(h.port('in'), await two.token());
  assert.deepEqual([failed.status, failed.body], [401, 'Jwks remote fetch is failed'], 'the expired keys are not used when their fetch fails');
  assert.equal((await authed(h.port('in'), await two.token())).status, 200, 'the next request fetched them again');
  assert.deepEqual(fetchStats(h), { failed: 1, success: 3 });
});
