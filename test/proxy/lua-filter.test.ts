// envoy.filters.http.lua in rig proxy: scripts from the config see and change real requests and
// responses on real sockets (headers, bodies, local replies, calls to another cluster's upstream),
// per-route config picks or turns off a script, a script that does not load is refused with its
// line, and a script error is logged and counted (lua.errors) while the stream goes on, as Envoy's.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { byName, CLUSTER_TYPE, httpListener, LISTENER_TYPE, request, routeConfig, ROUTER, startUpstream, staticCluster, type Upstream } from './harness.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { prepareHttpFilters } from '../../src/proxy/filters/registry.ts';
import { waitFor } from '../helpers/wait.ts';

const LUA = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua';
const LUA_PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute';

interface Proxy {
  rt: ProxyRuntime;
  port: number;
  log: string[];
  errors(): number;
}

/** A proxy whose listener `in` runs the Lua filter `lua` (typed_config fields) before the router; routes default to cluster app. */
async function startProxy(t: TestContext, lua: EnvoyJson, opts: { routes?: EnvoyJson[]; clusters: EnvoyJson[]; upstreams: Upstream[]; hcm?: EnvoyJson }): Promise<Proxy> {
  const log: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) log.push((JSON.parse(line) as { msg: string }).msg);
      cb();
    },
  });
  const rt = new ProxyRuntime({ node: { id: 'sidecar~127.0.0.1~lua.default~default.svc.cluster.local', cluster: 'lua', metadata: {} }, log: pino({ level: 'trace' }, sink) });
  t.after(async () => {
    rt.stop();
    for (const u of opts.upstreams) await u.close();
  });
  const routes = opts.routes ?? [{ match: { prefix: '/' }, route: { cluster: 'app' } }];
  // As rig proxy does before applying config that names the filter: the Lua VM loads.
  await prepareHttpFilters((typeUrl) => typeUrl === LUA);
  const errs = [
    ...rt.apply(CLUSTER_TYPE, byName(opts.clusters)),
    ...rt.apply(LISTENER_TYPE, byName([httpListener('in', routeConfig('r', routes), { stat_prefix: 'ingress_http', http_filters: [{ name: 'envoy.filters.http.lua', typed_config: { '@type': LUA, ...lua } }, ROUTER], ...opts.hcm })])),
  ];
  if (errs.length) throw new Error('config rejected:\n' + errs.join('\n'));
  await rt.settled();
  return { rt, port: rt.listeners.get('in')!.boundPort, log, errors: () => rt.stats.counter('http.ingress_http.lua.errors').value };
}

async function withApp(t: TestContext, lua: EnvoyJson, routes?: EnvoyJson[]): Promise<Proxy & { app: Upstream }> {
  const app = await startUpstream('app');
  const p = await startProxy(t, lua, { routes, clusters: [staticCluster('app', [app.port])], upstreams: [app] });
  return { ...p, app };
}

test('headers: read, add, replace, remove and iterate on the request and on the response', async (t) => {
  const p = await withApp(t, {
    inline_code: `
function envoy_on_request(h)
  local hs = h:headers()
  hs:add("x-lua-saw", hs:get("x-in") .. "|" .. hs:get(":method") .. " " .. hs:get(":path"))
  hs:add("x-multi", "b")
  hs:add("x-count", tostring(hs:getNumValues("x-multi")) .. ":" .. hs:getAtIndex("x-multi", 1))
  hs:replace("x-replace", "new")
  hs:remove("x-drop")
  local n = 0
  for k, v in pairs(hs) do if k == "x-in" then n = n + 1 end end
  hs:add("x-pairs", tostring(n))
end
function envoy_on_response(h)
  h:headers():add("x-lua-status", h:headers():get(":status"))
  h:headers():replace("x-upstream", "rewritten")
end`,
  });
  const r = await request(p.port, { path: '/p?q=1', headers: { 'x-in': 'abc', 'x-multi': 'a', 'x-replace': 'old', 'x-drop': 'gone' } });
  assert.equal(r.status, 200);
  const seen = r.json().headers;
  assert.equal(seen['x-lua-saw'], 'abc|GET /p?q=1');
  assert.equal(seen['x-count'], '2:b');
  assert.equal(seen['x-replace'], 'new');
  assert.equal(seen['x-drop'], undefined);
  assert.equal(seen['x-pairs'], '1');
  assert.equal(r.headers['x-lua-status'], '200');
  assert.equal(r.headers['x-upstream'], 'rewritten');
  assert.equal(p.errors(), 0);
});

test('respond(): a local reply with the script status, headers and body; the upstream is not called', async (t) => {
  const p = await withApp(t, {
    inline_code: `
function envoy_on_request(h)
  if h:headers():get("authorization") ~= "Bearer ok" then
    h:respond({[":status"] = "403", ["x-denied-by"] = "lua"}, "denied")
  end
end`,
  });
  const denied = await request(p.port);
  assert.equal(denied.status, 403);
  assert.equal(denied.headers['x-denied-by'], 'lua');
  assert.equal(denied.body, 'denied');
  assert.equal(p.app.requests.length, 0);
  assert.equal((await request(p.port, { headers: { authorization: 'Bearer ok' } })).status, 200);
  assert.equal(p.app.requests.length, 1);
});

test('body(): the request body rewritten with setBytes reaches the upstream; the response body is measured and replaced', async (t) => {
  const p = await withApp(t, {
    default_source_code: {
      inline_string: `
function envoy_on_request(h)
  local b = h:body()
  local s = b:getBytes(0, b:length())
  b:setBytes(string.upper(s) .. "!")
end
function envoy_on_response(h)
  local n = h:body():length()
  h:headers():add("x-body-size", tostring(n))
  if h:headers():get("x-upstream") == "app" then h:body():setBytes("short") end
end`,
    },
  });
  const r = await request(p.port, { method: 'POST', body: 'hello lua', headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'short');
  assert.ok(Number(r.headers['x-body-size']) > 50, 'the whole echo was counted');
  assert.equal(p.app.requests[0]!.body, 'HELLO LUA!');
  assert.equal(p.app.requests[0]!.headers['content-length'], '10');
});

test('httpCall(): the answer of another cluster (a real upstream) decides the request and shapes the response', async (t) => {
  const app = await startUpstream('app');
  const auth = await startUpstream('auth', (req, res, body) => {
    const ok = req.headers['x-token'] === 'good';
    res.writeHead(ok ? 200 : 401, { 'x-user': ok ? 'alice' : 'nobody' });
    res.end(`checked ${req.method} ${req.url} ${body}`);
    return true;
  });
  const p = await startProxy(
    t,
    {
      inline_code: `
function envoy_on_request(h)
  local headers, body = h:httpCall("auth", {
    [":method"] = "POST", [":path"] = "/check", [":authority"] = "auth",
    ["x-token"] = h:headers():get("x-token") or "",
  }, "payload", 5000)
  if headers[":status"] ~= "200" then
    h:respond({[":status"] = headers[":status"], ["x-user"] = headers["x-user"]}, body)
    return
  end
  h:headers():add("x-user", headers["x-user"])
  h:headers():add("x-auth-said", body)
end`,
    },
    { clusters: [staticCluster('app', [app.port]), staticCluster('auth', [auth.port])], upstreams: [app, auth] },
  );
  const ok = await request(p.port, { headers: { 'x-token': 'good' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.json().headers['x-user'], 'alice');
  assert.equal(ok.json().headers['x-auth-said'], 'checked POST /check payload');
  const no = await request(p.port, { headers: { 'x-token': 'bad' } });
  assert.equal(no.status, 401);
  assert.equal(no.headers['x-user'], 'nobody');
  assert.equal(no.body, 'checked POST /check payload');
  assert.equal(app.requests.length, 1);
  assert.equal(auth.requests.length, 2);
});

test('a script that does not load is refused (NACK) with the field and the Lua line', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const rt = new ProxyRuntime({ node: { id: 'sidecar~127.0.0.1~lua.default~default.svc.cluster.local', cluster: 'lua', metadata: {} } });
  t.after(() => rt.stop());
  const listener = httpListener('in', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), {
    http_filters: [{ name: 'envoy.filters.http.lua', typed_config: { '@type': LUA, inline_code: 'function envoy_on_request(h)\n  local x = \nend\n' } }, ROUTER],
  });
  await prepareHttpFilters((typeUrl) => typeUrl === LUA);
  const errs = rt.apply(LISTENER_TYPE, byName([listener]));
  assert.equal(errs.length, 1);
  assert.match(errs[0]!, /http_filters\[0\]\.typed_config\.inline_code: the Lua script does not load: .*inline_code:3: unexpected symbol near 'end'/);
});

test('a script error is logged and counted in lua.errors; the request goes on without the script, as in Envoy', async (t) => {
  const p = await withApp(t, {
    inline_code: `
function envoy_on_request(h)
  h:headers():add("x-before", "1")
  local t = nil
  h:headers():add("x-after", t.field)
end
function envoy_on_response(h)
  local ok, err = pcall(os.exit, 1)
  h:headers():add("x-exit", tostring(err))
  h:importPublicKey("k")
end`,
  });
  const r = await request(p.port);
  assert.equal(r.status, 200);
  assert.equal(r.json().headers['x-before'], '1');
  assert.equal(r.json().headers['x-after'], undefined);
  assert.match(String(r.headers['x-exit']), /os\.exit\(\) is not supported in rig proxy/, 'the VM cannot end the proxy');
  assert.equal(p.errors(), 2);
  assert.ok(p.log.some((l) => /^script log: inline_code:5: attempt to index a nil value \(local 't'\)/.test(l)), p.log.join('\n'));
  assert.ok(p.log.some((l) => /^script log: .*importPublicKey\(\) is not supported in rig proxy/.test(l)), p.log.join('\n'));
});

test('per-route LuaPerRoute: disabled turns the script off, name picks a source_codes entry, source_code brings its own', async (t) => {
  const perRoute = (v: EnvoyJson) => ({ 'envoy.filters.http.lua': { '@type': LUA_PER_ROUTE, ...v } });
  const p = await withApp(
    t,
    {
      default_source_code: { inline_string: 'function envoy_on_request(h) h:headers():add("x-script", "default") end' },
      source_codes: {
        'named.lua': { inline_string: 'function envoy_on_request(h) h:headers():add("x-script", "named") end' },
      },
    },
    [
      { match: { prefix: '/off' }, route: { cluster: 'app' }, typed_per_filter_config: perRoute({ disabled: true }) },
      { match: { prefix: '/named' }, route: { cluster: 'app' }, typed_per_filter_config: perRoute({ name: 'named.lua' }) },
      { match: { prefix: '/own' }, route: { cluster: 'app' }, typed_per_filter_config: perRoute({ source_code: { inline_string: 'function envoy_on_request(h) h:headers():add("x-script", "own") end' } }) },
      { match: { prefix: '/' }, route: { cluster: 'app' } },
    ],
  );
  const script = async (path: string) => (await request(p.port, { path })).json().headers['x-script'];
  assert.equal(await script('/'), 'default');
  assert.equal(await script('/off'), undefined);
  assert.equal(await script('/named'), 'named');
  assert.equal(await script('/own'), 'own');
});

test('logs, streamInfo(), dynamic metadata, route metadata() and connection():ssl()', async (t) => {
  const p = await withApp(
    t,
    {
      inline_code: `
function envoy_on_request(h)
  local si = h:streamInfo()
  si:dynamicMetadata():set("envoy.filters.http.lua", "seen", "yes")
  h:headers():add("x-proto", si:protocol())
  h:headers():add("x-local", si:downstreamLocalAddress())
  h:headers():add("x-remote", si:downstreamDirectRemoteAddress())
  h:headers():add("x-meta", h:metadata():get("team") or "none")
  h:headers():add("x-ssl", tostring(h:connection():ssl()))
  h:logInfo("hello from lua")
end
function envoy_on_response(h)
  h:headers():add("x-dm", h:streamInfo():dynamicMetadata():get("envoy.filters.http.lua")["seen"])
end`,
    },
    [{ match: { prefix: '/' }, route: { cluster: 'app' }, metadata: { filter_metadata: { 'envoy.filters.http.lua': { team: 'payments' } } } }],
  );
  const r = await request(p.port);
  const seen = r.json().headers;
  assert.equal(seen['x-proto'], 'HTTP/1.1');
  assert.equal(seen['x-local'], `127.0.0.1:${p.port}`);
  assert.match(String(seen['x-remote']), /^127\.0\.0\.1:\d+$/);
  assert.equal(seen['x-meta'], 'payments');
  assert.equal(seen['x-ssl'], 'nil');
  assert.equal(r.headers['x-dm'], 'yes');
  assert.ok(p.log.includes('script log: hello from lua'), p.log.join('\n'));
});

test('body() then httpCall(): the request body goes to another cluster, whose answer the upstream request carries', async (t) => {
  const app = await startUpstream('app');
  const scan = await startUpstream('scan', (_req, res, body) => {
    res.writeHead(200);
    res.end(body.includes('virus') ? 'infected' : 'clean');
    return true;
  });
  const p = await startProxy(
    t,
    {
      inline_code: `
function envoy_on_request(h)
  local b = h:body()
  local _, verdict = h:httpCall("scan", {[":method"] = "POST", [":path"] = "/scan", [":authority"] = "scan"}, b:getBytes(0, b:length()), 5000)
  if verdict == "infected" then h:respond({[":status"] = "422"}, "rejected") return end
  h:headers():add("x-scan", verdict)
end`,
    },
    { clusters: [staticCluster('app', [app.port]), staticCluster('scan', [scan.port])], upstreams: [app, scan] },
  );
  const ok = await request(p.port, { method: 'POST', body: 'a harmless upload' });
  assert.equal(ok.status, 200);
  assert.equal(ok.json().headers['x-scan'], 'clean');
  assert.equal(ok.json().body, 'a harmless upload');
  const bad = await request(p.port, { method: 'POST', body: 'a virus inside' });
  assert.equal(bad.status, 422);
  assert.equal(bad.body, 'rejected');
  assert.deepEqual(scan.requests.map((r) => r.body), ['a harmless upload', 'a virus inside']);
  assert.equal(app.requests.length, 1);
});

test('httpCall() in envoy_on_response: asynchronous reaches its cluster; a waiting one is refused with a Lua error', async (t) => {
  const app = await startUpstream('app');
  const logs = await startUpstream('logs');
  const p = await startProxy(
    t,
    {
      inline_code: `
function envoy_on_response(h)
  h:httpCall("logs", {[":method"] = "POST", [":path"] = "/log", [":authority"] = "logs"}, "status " .. h:headers():get(":status"), {timeout_ms = 1000, asynchronous = true})
  h:headers():add("x-logged", "yes")
  h:httpCall("logs", {[":method"] = "GET", [":path"] = "/wait", [":authority"] = "logs"}, nil, 1000)
end`,
    },
    { clusters: [staticCluster('app', [app.port]), staticCluster('logs', [logs.port])], upstreams: [app, logs] },
  );
  const r = await request(p.port);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-logged'], 'yes');
  const logged = await waitFor('the asynchronous log call', () => (logs.requests.length ? logs.requests : undefined));
  assert.deepEqual(logged.map((l) => `${l.method} ${l.url} ${l.body}`), ['POST /log status 200']);
  assert.equal(p.errors(), 1);
  assert.ok(p.log.some((l) => /httpCall\(\) in envoy_on_response is not supported in rig proxy unless asynchronous/.test(l)), p.log.join('\n'));
});

test('a local reply while envoy_on_request waits for httpCall() ends that run; envoy_on_response sees the reply', async (t) => {
  const app = await startUpstream('app');
  const slow = await startUpstream('slow', () => true); // never answers
  const p = await startProxy(
    t,
    {
      inline_code: `
function envoy_on_request(h)
  h:httpCall("slow", {[":method"] = "GET", [":path"] = "/", [":authority"] = "slow"}, nil, 60000)
  h:headers():add("x-never", "1")
end
function envoy_on_response(h)
  h:headers():add("x-response-script", h:headers():get(":status"))
end`,
    },
    { clusters: [staticCluster('app', [app.port]), staticCluster('slow', [slow.port])], upstreams: [app, slow], hcm: { stream_idle_timeout: '0.3s' } },
  );
  const r = await request(p.port);
  assert.equal(r.status, 408);
  assert.equal(r.headers['x-response-script'], '408');
  assert.equal(app.requests.length, 0, 'the request never went on to the app');
  assert.equal(p.errors(), 0);
});
