// ext_authz with_request_body in rig proxy, as Istio chains it for a CUSTOM policy (shadow RBAC,
// ext_authz, then the DENY RBAC filter): no filter after ext_authz sees the request before the
// check allowed it; allow_partial_message checks the first max_request_bytes while the rest of the
// body waits, then forwards the whole body; pack_as_bytes sends gRPC raw_body.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HTTP_EXT_AUTHZ_TYPE, HTTP_RBAC_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { ResponseFlag } from '../../src/proxy/response-flags.ts';
import { addr, configure, HCM, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';
import { until } from '../helpers/wait.ts';
import { ENABLED_METADATA, grpcCluster, SHADOW_RBAC, startGrpcAuthz } from './ext-authz-servers.ts';

/** Istio's DENY policy filter, after ext_authz: requests with the header x-rbac are denied. */
const DENY_RBAC = {
  name: 'envoy.filters.http.rbac',
  typed_config: { '@type': HTTP_RBAC_TYPE, rules: { action: 'DENY', policies: { 'ns[foo]-policy[deny]-rule[0]': { permissions: [{ header: { name: 'x-rbac', present_match: true } }], principals: [{ any: true }] } } } },
};

function listener(name: string, extAuthz: EnvoyJson): EnvoyJson {
  const ext = { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': HTTP_EXT_AUTHZ_TYPE, transport_api_version: 'V3', filter_enabled_metadata: ENABLED_METADATA, ...extAuthz } };
  return {
    name,
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), http_filters: [SHADOW_RBAC, ext, DENY_RBAC, ROUTER] } }] }],
  };
}

const httpService = (cluster: string): EnvoyJson => ({ server_uri: { uri: 'http://ext-authz.foo.svc.cluster.local', cluster, timeout: '600s' }, path_prefix: '/check' });

interface BodyAuthz {
  port: number;
  seen: { body: Buffer; headers: http.IncomingHttpHeaders }[];
  /** Allows the held checks (bodies starting with "hold"). */
  release(): void;
  close(): Promise<void>;
}

/** An HTTP authorization server deciding by the body: "deny…" gets 403, "hold…" waits for release(). */
async function startBodyAuthz(): Promise<BodyAuthz> {
  const seen: BodyAuthz['seen'] = [];
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ body, headers: req.headers });
      if (body.toString().startsWith('deny')) return void res.writeHead(403, { 'content-type': 'text/plain' }).end('denied by the body check');
      if (body.toString().startsWith('hold')) return void held.push(res);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    release: () => {
      for (const res of held.splice(0)) res.writeHead(200).end();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const stat = (h: Harness, n: string) => h.rt.stats.all().find((s) => s.name === n)?.value ?? 0;

test('with_request_body: the DENY RBAC filter after ext_authz runs only once the check allowed the request', async (t) => {
  const app = await startUpstream('app');
  const authz = await startBodyAuthz();
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, { clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authz.port])], listeners: [listener('l', { http_service: httpService('authz'), with_request_body: { max_request_bytes: 1024 } })] });
  const port = h.port('l');
  const post = (body: string, headers: http.OutgoingHttpHeaders = {}) => request(port, { method: 'POST', path: '/secure/doc', body, headers });

  const denied = await post('deny: no ticket', { 'x-rbac': '1' });
  assert.equal(denied.status, 403);
  assert.equal(denied.body, 'denied by the body check', "ext_authz's denial, not the RBAC filter's");
  const info = h.streams.at(-1)!;
  assert.ok(info.responseFlags & ResponseFlag.UnauthorizedExternalService, 'UAEX');
  assert.equal(info.responseCodeDetails, 'ext_authz_denied');
  assert.equal(authz.seen[0].body.toString(), 'deny: no ticket', 'the check carried the whole body');
  assert.equal(stat(h, 'http.l.rbac.denied'), 0, 'the RBAC filter never saw the denied request');
  assert.equal(stat(h, 'http.l.rbac.allowed'), 0);

  const rbac = await post('let me in', { 'x-rbac': '1' });
  assert.equal(rbac.status, 403);
  assert.equal(rbac.body, 'RBAC: access denied', 'allowed by ext_authz, then denied by the DENY policy');
  const rinfo = h.streams.at(-1)!;
  assert.equal(rinfo.responseFlags & ResponseFlag.UnauthorizedExternalService, 0);
  assert.equal(rinfo.responseCodeDetails, 'rbac_access_denied_matched_policy[ns[foo]-policy[deny]-rule[0]]');
  assert.equal(stat(h, 'http.l.rbac.denied'), 1);

  const ok = await post('let me in');
  assert.equal(ok.status, 200);
  assert.equal(ok.json().body, 'let me in');
  assert.equal(stat(h, 'http.l.rbac.allowed'), 1);
  assert.equal(stat(h, 'http.l.ext_authz.ok'), 2);
  assert.equal(stat(h, 'http.l.ext_authz.denied'), 1);

  const tooBig = await post('x'.repeat(1025), { 'x-rbac': '1' });
  assert.equal(tooBig.status, 413, 'allow_partial_message unset: a body over max_request_bytes is refused');
  assert.equal(h.streams.at(-1)!.responseCodeDetails, 'request_payload_too_large');
  assert.equal(authz.seen.length, 3, 'and never checked');
  assert.equal(stat(h, 'http.l.rbac.denied'), 1, 'nor seen by the RBAC filter');
  assert.equal(app.requests.length, 1);
});

test('max_request_bytes above the connection manager\'s 1 MiB buffer raises the limit for the check', async (t) => {
  const app = await startUpstream('app', (_req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ length: body.length }));
    return true;
  });
  const authz = await startBodyAuthz();
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, { clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authz.port])], listeners: [listener('l', { http_service: httpService('authz'), with_request_body: { max_request_bytes: 2_000_000 } })] });
  const body = 'allow ' + 'm'.repeat(1_500_000);
  const ok = await request(h.port('l'), { method: 'POST', path: '/secure/big', body });
  assert.equal(ok.status, 200);
  assert.equal(authz.seen[0].body.length, body.length, 'the whole 1.5 MB body was checked');
  assert.equal(JSON.parse(ok.body).length, body.length);
  const tooBig = await request(h.port('l'), { method: 'POST', path: '/secure/big', body: 'allow ' + 'm'.repeat(2_000_000) });
  assert.equal(tooBig.status, 413);
  assert.equal(authz.seen.length, 1);
});

/** A POST whose body is sent in two parts: `first`, then, after `between()`, `rest`; then what between() returned runs. */
function stagedPost(port: number, first: Buffer, rest: Buffer, between: () => Promise<(() => void) | void>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/secure/upload', agent: false, headers: { 'content-length': first.length + rest.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.write(first);
    between().then(
      (afterRest) => {
        req.end(rest);
        afterRest?.();
      },
      (e: unknown) => reject(e as Error),
    );
  });
}

test('allow_partial_message: the check starts at max_request_bytes, the whole body (past the 1 MiB buffer) reaches the upstream after it', async (t) => {
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  const app = await startUpstream('app', (_req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ length: body.length, sha: sha(body) }));
    return true;
  });
  const authz = await startBodyAuthz();
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, { clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authz.port])], listeners: [listener('l', { http_service: httpService('authz'), with_request_body: { max_request_bytes: 16, allow_partial_message: true } })] });
  const port = h.port('l');

  const first = Buffer.from('hold: the first part of an upload');
  const rest = Buffer.alloc(1_500_000, 'y');
  // The rest of the body is sent only once the check arrived (it started on the first bytes); the
  // check answers while the rest is on its way, which the proxy holds back until then.
  const ok = await stagedPost(port, first, rest, async () => {
    await until('the check on the first 16 bytes', () => authz.seen.length >= 1);
    return () => authz.release();
  });
  assert.equal(ok.status, 200);
  assert.equal(authz.seen[0].body.toString(), 'hold: the first ', 'max_request_bytes of the body');
  assert.equal(authz.seen[0].headers['x-envoy-auth-partial-body'], 'true');
  assert.deepEqual(JSON.parse(ok.body), { length: first.length + rest.length, sha: sha(Buffer.concat([first, rest])) }, 'the upstream got the whole body');

  const denied = await stagedPost(port, Buffer.from('deny this upload, please'), Buffer.alloc(100_000, 'z'), () => until('the second check', () => authz.seen.length >= 2));
  assert.equal(denied.status, 403);
  assert.equal(denied.body, 'denied by the body check');
  assert.equal(app.requests.length, 1, 'a denied upload never reaches the app');
  assert.equal(stat(h, 'http.l.rbac.allowed'), 1, 'only the allowed upload went on to the RBAC filter');

  const small = await request(port, { method: 'POST', path: '/secure/small', body: 'allow me' });
  assert.equal(small.status, 200);
  assert.equal(authz.seen[2].body.toString(), 'allow me');
  assert.equal(authz.seen[2].headers['x-envoy-auth-partial-body'], 'false', 'a body within max_request_bytes is whole');
});

/** One HTTP/2 (h2c) POST. */
async function h2Post(port: number, path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': path, ...headers });
      let status = 0;
      const chunks: Buffer[] = [];
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
      req.on('error', reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}

test('HTTP/2 downstream: the body waits for the check the same way, and goes on whole', async (t) => {
  const app = await startUpstream('app', (_req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ length: body.length }));
    return true;
  });
  const authz = await startBodyAuthz();
  const h = await startTestRuntime(t, [app, authz]);
  await configure(h, { clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authz.port])], listeners: [listener('l', { http_service: httpService('authz'), with_request_body: { max_request_bytes: 16, allow_partial_message: true } })] });
  const port = h.port('l');
  const denied = await h2Post(port, '/secure/x', Buffer.from('deny over h2'), { 'x-rbac': '1' });
  assert.deepEqual(denied, { status: 403, body: 'denied by the body check' });
  assert.equal(stat(h, 'http.l.rbac.denied'), 0);
  const big = Buffer.alloc(1_500_000, 'q');
  big.write('allow: ');
  const ok = await h2Post(port, '/secure/y', big);
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).length, big.length);
  assert.equal(authz.seen[1].body.toString(), 'allow: qqqqqqqqq');
  assert.equal((await h2Post(port, '/secure/z', Buffer.from('allow'), { 'x-rbac': '1' })).body, 'RBAC: access denied');
});

test('gRPC with_request_body: body as UTF-8 text, or raw_body bytes with pack_as_bytes; size from Content-Length', async (t) => {
  const app = await startUpstream('app');
  const authz = await startGrpcAuthz();
  const h = await startTestRuntime(t, [app]);
  t.after(() => authz.close());
  const grpcService = { envoy_grpc: { cluster_name: 'authz' }, timeout: '5s' };
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), grpcCluster('authz', authz.port)],
    listeners: [listener('text', { grpc_service: grpcService, with_request_body: { max_request_bytes: 64 } }), listener('bytes', { grpc_service: grpcService, with_request_body: { max_request_bytes: 4, allow_partial_message: true, pack_as_bytes: true } })],
  });
  const binary = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41, 0x42]);
  const send = (listener: string, body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: h.port(listener), method: 'POST', path: '/secure/b', agent: false, headers: { 'x-verdict': 'allow', 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });

  assert.equal(await send('text', Buffer.from('héllo')), 200);
  const text = authz.seen[0].attributes.request!.http;
  assert.equal(text.body, 'héllo');
  assert.equal(text.raw_body, undefined);
  assert.equal(text.size, 6, 'size is the request size in bytes');
  assert.equal(text.headers['x-envoy-auth-partial-body'], 'false');

  assert.equal(await send('bytes', binary), 200);
  const raw = authz.seen[1].attributes.request!.http;
  assert.deepEqual(raw.raw_body, binary.subarray(0, 4), 'the first max_request_bytes as bytes');
  assert.equal(raw.body, undefined);
  assert.equal(raw.size, 6, 'the whole request size, not the checked part');
  assert.equal(raw.headers['x-envoy-auth-partial-body'], 'true');
  assert.equal(app.requests.at(-1)!.body, binary.toString(), 'the whole body went upstream');
});
