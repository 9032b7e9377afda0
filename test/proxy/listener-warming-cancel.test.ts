// A listener version dropped while it warms is cancelled, as Envoy's init manager goes with its
// listener: replaced by a newer version or removed, its remote Wasm fetch makes no further try (a
// module server counts them, while another listener's fetch with the same retry_back_off goes on
// retrying: the window was long enough for several tries) and the try under way is aborted (the
// server sees its connection close); the dropped config becomes collectable; an RDS wait leaves no
// timer (no initial_fetch_timeout warning for a removed listener, while one warming beside it warns);
// a jwt_authn async_fetch shared with the newer version goes on (only the dropped version's wait
// ends): the newer version serves with the keys of that one fetch.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { JWT_AUTHN_TYPE } from '../../src/envoy/index.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { listenLocal } from '../helpers/listen.ts';
import { waitFor } from '../helpers/wait.ts';
import { addr, CLUSTER_TYPE, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';
/** Many retries, each after up to 0.2 s: a fetch that keeps failing retries for minutes. */
const RETRY = { num_retries: 1000, retry_back_off: { base_interval: '0.1s', max_interval: '0.2s' } };

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Answers 503 to every request but try number `hold.try` of `hold.path`, which gets no answer (its close is counted). */
function failingModuleServer(hold = { path: '', try: 0 }) {
  const asked = new Map<string, number>();
  let closedUnanswered = 0;
  const server = http.createServer((req, res) => {
    const n = (asked.get(req.url ?? '') ?? 0) + 1;
    asked.set(req.url ?? '', n);
    if (req.url === hold.path && n === hold.try) res.once('close', () => closedUnanswered++);
    else res.writeHead(503).end('busy');
  });
  return { server, asked: (path: string) => asked.get(path) ?? 0, closedUnanswered: () => closedUnanswered };
}

function remotePlugin(name: string) {
  const remote = { http_uri: { uri: `http://code.local/${name}.wasm`, cluster: 'code', timeout: '60s' }, sha256: crypto.createHash('sha256').update(name).digest('hex'), retry_policy: RETRY };
  return { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: { name, configuration: { '@type': STRING_VALUE, value: name }, vm_config: { vm_id: name, code: { remote } } } } };
}

async function setup(t: Parameters<typeof startTestRuntime>[0], code: ReturnType<typeof failingModuleServer>) {
  // Before the server's close (listenLocal), which waits for its connections: a held try's too.
  t.after(() => code.server.closeAllConnections());
  const codePort = await listenLocal(code.server, t);
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [app.port]), staticCluster('code', [codePort])]), []);
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  const listener = (name: string, plugin?: string) => httpListener(name, route, { http_filters: plugin ? [remotePlugin(plugin), ROUTER] : [ROUTER] });
  return { h, listener };
}

/** Waits until the control listener's fetch (never dropped) made `tries` more tries: several backoffs went by. */
async function whileControlRetries(code: ReturnType<typeof failingModuleServer>, tries: number): Promise<void> {
  const from = code.asked('/control.wasm');
  await waitFor(`${tries} more tries of the control fetch`, () => (code.asked('/control.wasm') >= from + tries ? true : undefined));
}

const warmingConfig = (h: Harness, name: string) => h.rt.listeners.warmingListeners().find((c) => c.name === name);

test('a version warming on a failing remote Wasm fetch, replaced by one without the plugin: the new one goes in at once, the old fetch tries no more and its config is collected', async (t) => {
  const code = failingModuleServer();
  const { h, listener } = await setup(t, code);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('in', 'dropped'), listener('control', 'control')]), []);
  await waitFor('a retry of the fetch', () => (code.asked('/dropped.wasm') >= 2 ? true : undefined));
  const dropped = new WeakRef(warmingConfig(h, 'in')!);

  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('in'), listener('control', 'control')]), []);
  await waitFor('the new version listening', () => (h.rt.listeners.get('in')?.state === 'listening' ? true : undefined));
  assert.equal((await request(h.port('in'))).status, 200);
  const tries = code.asked('/dropped.wasm');
  await whileControlRetries(code, 5);
  // At most a try already on its way when the version was dropped.
  assert.ok(code.asked('/dropped.wasm') <= tries + 1, `no further try after the replacement (${tries} before, ${code.asked('/dropped.wasm')} after)`);
  assert.deepEqual(h.rt.listeners.warmingListeners().map((c) => c.name), ['control']);
  await waitFor('the dropped version collected', () => {
    gc();
    return dropped.deref() === undefined ? true : undefined;
  });
});

test('a listener removed while its remote Wasm fetch is under way: the try is aborted and no other is made', async (t) => {
  // The third try gets no answer: it is under way when the listener goes.
  const code = failingModuleServer({ path: '/gone.wasm', try: 3 });
  const { h, listener } = await setup(t, code);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('gone', 'gone'), listener('control', 'control')]), []);
  await waitFor('the third try under way', () => (code.asked('/gone.wasm') === 3 ? true : undefined));
  assert.equal(code.closedUnanswered(), 0);

  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('control', 'control')]), []);
  await waitFor('the try under way aborted', () => (code.closedUnanswered() === 1 ? true : undefined));
  await whileControlRetries(code, 5);
  assert.equal(code.asked('/gone.wasm'), 3, 'no further try after the removal');
  assert.equal(h.rt.listeners.get('gone'), undefined, 'never in service');
  assert.deepEqual(h.rt.listeners.warmingListeners().map((c) => c.name), ['control']);
});

test('a listener removed while it waits for its RDS routes leaves no timer: no initial_fetch_timeout warning for it, while one still waiting warns', async (t) => {
  const log: string[] = [];
  const rt = new ProxyRuntime({ node: { id: 'sidecar~127.0.0.1~app.default~default.svc.cluster.local', cluster: 'app.default', metadata: {} }, log: pino({ level: 'warn' }, { write: (line: string) => void log.push(line) }) });
  t.after(() => rt.stop());
  const rds = (name: string, route: string) => {
    const l = httpListener(name, route, {}, { address: addr(0) });
    const hcm = (l.filter_chains as { filters: { typed_config: Record<string, unknown> }[] }[])[0].filters[0].typed_config;
    hcm.rds = { route_config_name: route, config_source: { ads: {}, initial_fetch_timeout: '0.3s', resource_api_version: 'V3' } };
    return [name, l] as const;
  };
  assert.deepEqual(rt.apply(LISTENER_TYPE, new Map([rds('gone', 'g')]), '1'), []);
  assert.deepEqual(rt.listeners.warmingListeners().map((c) => c.name), ['gone']);
  // The control starts waiting after the removed one, for as long: its timer fires after the other's would.
  assert.deepEqual(rt.apply(LISTENER_TYPE, new Map([rds('control', 'c')]), '2'), []);
  const warned = () => log.map((l) => JSON.parse(l) as { msg: string; listener?: string }).filter((l) => l.msg.includes('initial_fetch_timeout'));
  await waitFor('the control warned', () => (warned().length ? true : undefined));
  await rt.listeners.settled();
  assert.deepEqual(warned().map((l) => l.listener), ['control'], 'the removed listener left no timer');
  assert.equal(rt.listeners.get('gone'), undefined);
  assert.equal(rt.listeners.get('control')?.state, 'listening');
});

test('a version warming on a jwt_authn async_fetch shared with its replacement: the dropped version is collected at once, the fetch goes on and the newer version serves with its keys', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const keys = [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }];
  let fetches = 0;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const jwks = http.createServer((_req, res) => {
    fetches++;
    void held.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys })));
  });
  t.after(() => jwks.closeAllConnections());
  const jwksPort = await listenLocal(jwks, t);
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [app.port]), staticCluster('jwks', [jwksPort])]), []);
  const jwt = {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: {
      '@type': JWT_AUTHN_TYPE,
      providers: { p: { issuer: 'https://issuer.test', remote_jwks: { http_uri: { uri: 'http://jwks.test/keys', cluster: 'jwks', timeout: '30s' }, async_fetch: {} } } },
      rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }],
    },
  };
  // The versions differ in their routes only: the same provider, one source shared.
  const listener = (path: string) => httpListener('in', routeConfig('r', [{ match: { prefix: path }, route: { cluster: 'app' } }]), { http_filters: [jwt, ROUTER] });
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('/')]), []);
  await waitFor('the JWKS fetch under way', () => (fetches === 1 ? true : undefined));
  const dropped = new WeakRef(warmingConfig(h, 'in')!);

  assert.deepEqual(h.apply(LISTENER_TYPE, [listener('/api')]), []);
  await waitFor('the dropped version collected while the fetch is held', () => {
    gc();
    return dropped.deref() === undefined ? true : undefined;
  });
  assert.equal(h.rt.listeners.get('in'), undefined, 'the newer version waits for the same fetch');
  release();
  await h.rt.settled();
  const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer('https://issuer.test').setExpirationTime('1h').sign(privateKey);
  const r = await request(h.port('in'), { path: '/api', headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, r.body);
  assert.equal(fetches, 1, 'one fetch, not cancelled with the dropped version');
});
