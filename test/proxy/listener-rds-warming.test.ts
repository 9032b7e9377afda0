// Listeners warm on their RDS route configuration, as Envoy's: the RDS subscription of an HTTP
// connection manager is an init target of its listener version. Driven by a test ADS server: a new
// listener of a `rig proxy -c` process is not bound, and the proxy not ready, until its routes
// arrive; an LDS update naming another route configuration keeps the previous version answering
// with the old routes (never a 404) until the new ones arrive; with a non-zero initial_fetch_timeout
// the listener goes live without routes (404 NR, a warning logged) when none came in time; a
// refused (NACKed) route configuration ends the wait too, as in Envoy, whether the runtime or the
// xDS client itself refused it (a stream failure does not end it); a newer version replaces one
// still waiting, and a listener removed while waiting just goes. The RDS subscription is the union
// of the route configurations of the listener versions serving or warming: while an update warms,
// the old routes stay subscribed (and updated) for the version serving, and go once it left.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { freePort } from '../../src/local/ports.ts';
import { configDump } from '../../src/proxy/admin/config-dump.ts';
import type { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { AdsTestServer, type RecordedRequest } from '../xds-client/ads-test-server.ts';
import { addr, httpListener, request, routeConfig, type Reply } from './harness.ts';
import { adsBootstrap, startFedRuntime } from './fed-runtime.ts';

/** A listener whose connection manager takes route configuration `route` over ADS; `timeout` is the config source's initial_fetch_timeout ('0s', as istiod sends: wait for good). */
function rdsListener(name: string, route: string, timeout: string, port = 0): EnvoyJson {
  const listener = httpListener(name, route, {}, { address: addr(port) });
  const hcm = ((listener.filter_chains as EnvoyJson[])[0].filters as EnvoyJson[])[0].typed_config as EnvoyJson;
  hcm.rds = { route_config_name: route, config_source: { ads: {}, initial_fetch_timeout: timeout, resource_api_version: 'V3' } };
  return listener;
}

/** A route configuration answering every request 200 with `body`. */
const answering = (name: string, body: string) => routeConfig(name, [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: body } } }]);

const isType = (typeUrl: string, pred: (r: RecordedRequest) => boolean = () => true) => (r: RecordedRequest) => r.type_url === typeUrl && pred(r);
const names = (...n: string[]) => (r: RecordedRequest) => JSON.stringify(r.resource_names ?? []) === JSON.stringify(n);

/** Answers the client's cluster subscription (none) and its listener subscription with `listeners`. */
async function serveListeners(ads: AdsTestServer, listeners: EnvoyJson[]): Promise<void> {
  await ads.waitFor(isType(CLUSTER_TYPE), 0, 60_000);
  ads.push(CLUSTER_TYPE, 'c1', []);
  await ads.waitFor(isType(LISTENER_TYPE), 0, 60_000);
  ads.push(LISTENER_TYPE, 'l1', listeners);
}

const reply = (port: number): Promise<Reply | string> => request(port).catch((e: NodeJS.ErrnoException) => e.code ?? e.message);
const warming = (rt: ProxyRuntime) => rt.stats.gauge('listener_manager.total_listeners_warming').value;

test('a new listener waits for its RDS route configuration: not bound, the proxy not ready, until it arrives; then it answers 200', async (t) => {
  const ads = new AdsTestServer();
  const adsPort = await ads.start();
  t.after(() => ads.stop());
  const file = path.join(tempDir(t, 'rds-warming-'), 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(adsBootstrap(adsPort)));
  const proxy = await startRigProxyFromFile(t, file);
  const admin = (p: string) => fetch(`http://127.0.0.1:${proxy.ports.admin}${p}`).then(async (r) => ({ status: r.status, body: await r.text() }));
  const listenerPort = await freePort();

  await serveListeners(ads, [rdsListener('in', 'r', '0s', listenerPort)]);
  await ads.waitFor(isType(ROUTE_TYPE, names('r')), 0, 60_000);
  await waitFor(() => `the listener warming\n${proxy.log()}`, async () => ((await admin('/stats?filter=^listener_manager')).body.includes('total_listeners_warming: 1') ? true : undefined), 60_000);
  assert.deepEqual(await admin('/ready'), { status: 503, body: 'INITIALIZING\n' });
  assert.equal((await fetch(`http://127.0.0.1:${proxy.ports.ready}/healthz/ready`)).status, 503);
  for (let i = 0; i < 3; i++) assert.equal(await reply(listenerPort), 'ECONNREFUSED', 'a listener waiting for its routes is not bound: no request meets it without routes (404 NR)');
  const dump = JSON.parse((await admin('/config_dump')).body) as { configs: { dynamic_listeners?: { name: string; active_state?: unknown; warming_state?: { version_info: string } }[] }[] };
  const dl = dump.configs.flatMap((c) => c.dynamic_listeners ?? []).find((l) => l.name === 'in');
  assert.equal(dl?.warming_state?.version_info, 'l1', 'config_dump: the listener in warming_state');
  assert.equal(dl?.active_state, undefined);

  ads.push(ROUTE_TYPE, 'r1', [answering('r', 'routed')]);
  const served = await waitFor(() => `the listener serving\n${proxy.log()}`, async () => {
    const r = await reply(listenerPort);
    return typeof r === 'object' ? r : undefined;
  }, 60_000);
  assert.equal(served.status, 200, 'the first answer already has the routes');
  assert.equal(served.body, 'routed');
  await waitFor('the proxy ready', async () => ((await admin('/ready')).status === 200 ? true : undefined));
  assert.equal((await fetch(`http://127.0.0.1:${proxy.ports.ready}/healthz/ready`)).status, 200);
  assert.match((await admin('/stats?filter=^listener_manager')).body, /listener_manager\.total_listeners_warming: 0\n/);
});

test('an LDS update naming a route configuration not received yet keeps the previous version answering with the old routes, never a 404, until it arrives', async (t) => {
  const { ads, rt } = await startFedRuntime(t);
  await serveListeners(ads, [rdsListener('in', 'one', '0s')]);
  await ads.waitFor(isType(ROUTE_TYPE, names('one')));
  ads.push(ROUTE_TYPE, 'r1', [answering('one', 'one')]);
  const port = await waitFor('the first version listening', () => (rt.listeners.get('in')?.state === 'listening' ? rt.listeners.get('in')!.boundPort : undefined));
  assert.equal((await request(port)).body, 'one');
  // Not asked for its state before the update: it latches LIVE on its own.

  let from = ads.requests.length;
  ads.push(LISTENER_TYPE, 'l2', [rdsListener('in', 'two', '0s')]);
  // The client subscribes the new name beside the old one, which the version serving still uses.
  await ads.waitFor(isType(ROUTE_TYPE, names('one', 'two')), from);
  for (let i = 0; i < 5; i++) {
    const r = await request(port);
    assert.equal(r.status, 200, 'the previous version serves while the new one waits for its routes');
    assert.equal(r.body, 'one');
  }
  assert.equal(warming(rt), 1);
  assert.equal(rt.state(), 'LIVE', 'a listener update warming does not take the server back to INITIALIZING');
  const dump = configDump(rt, {}, { includeEds: false }) as { configs: { dynamic_listeners?: { name: string; active_state?: { version_info: string }; warming_state?: { version_info: string } }[] }[] };
  const dl = dump.configs.flatMap((c) => c.dynamic_listeners ?? []).find((l) => l.name === 'in');
  assert.equal(dl?.active_state?.version_info, 'l1', 'active_state: the version serving');
  assert.equal(dl?.warming_state?.version_info, 'l2', 'warming_state: the version waiting for its routes');

  from = ads.requests.length;
  ads.push(ROUTE_TYPE, 'r2', [answering('two', 'two')]);
  await waitFor('the new routes answering', async () => ((await request(port)).body === 'two' ? true : undefined));
  assert.equal(warming(rt), 0);
  assert.equal(rt.listeners.get('in')?.boundPort, port, 'swapped in place, on the same bound port');

  // A route configuration already known (here: the one just received) is nothing to wait for.
  ads.push(LISTENER_TYPE, 'l3', [rdsListener('in', 'two', '0s'), rdsListener('other', 'two', '0s')]);
  await waitFor('the second listener on the known routes', () => (rt.listeners.get('other')?.state === 'listening' ? true : undefined));
  assert.equal(warming(rt), 0);
  assert.equal((await request(rt.listeners.get('other')!.boundPort)).body, 'two');
});

test('with a non-zero initial_fetch_timeout a listener whose routes do not come goes live without them (404 NR), with a warning; they apply when they come', async (t) => {
  const { ads, rt, log } = await startFedRuntime(t);
  await serveListeners(ads, [rdsListener('in', 'late', '0.2s')]);
  await ads.waitFor(isType(ROUTE_TYPE, names('late')));
  const port = await waitFor('the listener live after the timeout', () => (rt.listeners.get('in')?.state === 'listening' ? rt.listeners.get('in')!.boundPort : undefined));
  const warned = log.map((l) => JSON.parse(l) as { msg: string; listener?: string; routeConfig?: string }).find((l) => l.msg.includes('initial_fetch_timeout'));
  assert.equal(warned?.listener, 'in', 'the timeout is logged, naming the listener');
  assert.equal(warned?.routeConfig, 'late');
  const r = await request(port);
  assert.equal(r.status, 404);
  assert.equal(rt.state(), 'LIVE');

  ads.push(ROUTE_TYPE, 'r1', [answering('late', 'late')]);
  await waitFor('the routes applied once they came', async () => ((await request(port)).body === 'late' ? true : undefined));
});

test('a refused (NACKed) route configuration ends the wait, as Envoy: the listener goes live without routes (404) until a good one comes', async (t) => {
  const { ads, rt } = await startFedRuntime(t);
  await serveListeners(ads, [rdsListener('in', 'r', '0s')]);
  await ads.waitFor(isType(ROUTE_TYPE, names('r')));
  await waitFor('the listener warming', () => (warming(rt) === 1 ? true : undefined));
  assert.equal(rt.listeners.get('in'), undefined, 'not in service while it waits for its routes');

  const from = ads.requests.length;
  const nonce = ads.push(ROUTE_TYPE, 'bad', [routeConfig('r', [{ match: { safe_regex: { regex: '(' } }, direct_response: { status: 200 } }])]);
  const nack = await ads.waitFor(isType(ROUTE_TYPE, (r) => r.response_nonce === nonce), from);
  assert.match(nack.error_detail?.message ?? '', /invalid regular expression/);
  const port = await waitFor('the listener live after the refusal', () => (rt.listeners.get('in')?.state === 'listening' ? rt.listeners.get('in')!.boundPort : undefined));
  assert.equal((await request(port)).status, 404);

  ads.push(ROUTE_TYPE, 'good', [answering('r', 'good')]);
  await waitFor('the good routes applied', async () => ((await request(port)).body === 'good' ? true : undefined));
});

test('a route configuration the xDS client refuses itself (a name twice) ends the wait as one the runtime refuses; a broken stream does not', async (t) => {
  const { ads, rt } = await startFedRuntime(t);
  await serveListeners(ads, [rdsListener('in', 'r', '0s')]);
  await ads.waitFor(isType(ROUTE_TYPE, names('r')));
  await waitFor('the listener warming', () => (warming(rt) === 1 ? true : undefined));

  // A stream failure is no refused config (Envoy's ConnectionFailure): after the reconnect the listener still waits.
  ads.breakStream();
  await ads.waitFor((r) => r.stream === 2 && isType(ROUTE_TYPE, names('r'))(r));
  assert.equal(warming(rt), 1);
  assert.equal(rt.listeners.get('in'), undefined, 'still not in service');

  const from = ads.requests.length;
  const nonce = ads.push(ROUTE_TYPE, 'dup', [answering('r', 'a'), answering('r', 'b')]);
  const nack = await ads.waitFor(isType(ROUTE_TYPE, (r) => r.response_nonce === nonce), from);
  assert.match(nack.error_detail?.message ?? '', /duplicate resource name "r"/, 'refused by the client, before the runtime');
  const port = await waitFor('the listener live after the refusal', () => (rt.listeners.get('in')?.state === 'listening' ? rt.listeners.get('in')!.boundPort : undefined));
  const r = await request(port);
  assert.equal(r.status, 404, 'without routes: 404 NR');
  assert.equal(rt.state(), 'LIVE');

  ads.push(ROUTE_TYPE, 'good', [answering('r', 'good')]);
  await waitFor('the good routes applied', async () => ((await request(port)).body === 'good' ? true : undefined));
});

test('while an update warms on new routes the old ones stay subscribed, and updates to them reach the version serving; they go once the new version is in', async (t) => {
  const { ads, rt } = await startFedRuntime(t);
  const routeNames = () => {
    const dump = configDump(rt, {}, { includeEds: false }) as { configs: { dynamic_route_configs?: { route_config: { name: string } }[] }[] };
    return dump.configs.flatMap((c) => c.dynamic_route_configs ?? []).map((r) => r.route_config.name);
  };
  await serveListeners(ads, [rdsListener('in', 'one', '0s')]);
  await ads.waitFor(isType(ROUTE_TYPE, names('one')));
  ads.push(ROUTE_TYPE, 'r1', [answering('one', 'one')]);
  const port = await waitFor('the first version listening', () => (rt.listeners.get('in')?.state === 'listening' ? rt.listeners.get('in')!.boundPort : undefined));

  let from = ads.requests.length;
  ads.push(LISTENER_TYPE, 'l2', [rdsListener('in', 'two', '0s')]);
  await ads.waitFor(isType(ROUTE_TYPE, names('one', 'two')), from);
  assert.equal(warming(rt), 1);
  assert.deepEqual(routeNames(), ['one'], 'config_dump still lists the routes of the version serving');

  ads.push(ROUTE_TYPE, 'r2', [answering('one', 'one, updated')]);
  await waitFor('the update of the old routes serving', async () => ((await request(port)).body === 'one, updated' ? true : undefined));
  assert.equal(warming(rt), 1, 'the new version still waits for its own routes');

  from = ads.requests.length;
  ads.push(ROUTE_TYPE, 'r3', [answering('two', 'two')]);
  await waitFor('the new version serving', async () => ((await request(port)).body === 'two' ? true : undefined));
  // No listener version uses the old routes any more: unsubscribed, and out of the runtime.
  await ads.waitFor(isType(ROUTE_TYPE, names('two')), from);
  await waitFor('the old routes dropped', () => (rt.routeTable('one') === undefined ? true : undefined));
  assert.deepEqual(routeNames(), ['two']);
  assert.equal(warming(rt), 0);
});

test('a newer version replaces one still waiting for its routes, and a listener removed while it waits just goes', async (t) => {
  const { ads, rt } = await startFedRuntime(t);
  await serveListeners(ads, [rdsListener('in', 'a', '0s'), rdsListener('gone', 'g', '0s')]);
  await ads.waitFor(isType(ROUTE_TYPE, names('a', 'g')));
  await waitFor('both listeners warming', () => (warming(rt) === 2 ? true : undefined));

  const from = ads.requests.length;
  ads.push(LISTENER_TYPE, 'l2', [rdsListener('in', 'b', '0s')]);
  await ads.waitFor(isType(ROUTE_TYPE, names('b')), from);
  assert.deepEqual(rt.listeners.warmingListeners().map((c) => c.name), ['in'], 'the removed listener no longer warms');
  assert.equal(warming(rt), 1);

  // The first versions' routes coming late (no longer subscribed) put nothing in service: the newer version waits for its own.
  const late = ads.push(ROUTE_TYPE, 'r1', [answering('a', 'a'), answering('g', 'g')]);
  await ads.waitFor(isType(ROUTE_TYPE, (r) => r.response_nonce === late), from);
  assert.equal(rt.listeners.get('in'), undefined);
  assert.equal(rt.listeners.get('gone'), undefined);

  ads.push(ROUTE_TYPE, 'r2', [answering('b', 'b')]);
  const port = await waitFor('the newer version listening', () => (rt.listeners.get('in')?.state === 'listening' ? rt.listeners.get('in')!.boundPort : undefined));
  assert.equal((await request(port)).body, 'b');
  assert.equal(rt.listeners.get('gone'), undefined);
  assert.equal(warming(rt), 0);
});

/** A listener on `port` whose Lua filter reads the whole request body, then adds a request header (which clears the route cache, as in Envoy: the route is matched again). */
function bodyReadingListener(name: string, route: string, port: number): EnvoyJson {
  const listener = rdsListener(name, route, '0s', port);
  const hcm = ((listener.filter_chains as EnvoyJson[])[0].filters as EnvoyJson[])[0].typed_config as EnvoyJson;
  const lua = { name: 'envoy.filters.http.lua', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua', default_source_code: { inline_string: 'function envoy_on_request(h)\n  h:body()\n  h:headers():add("x-body-read", "yes")\nend\n' } } };
  hcm.http_filters = [lua, ...(hcm.http_filters as EnvoyJson[])];
  return listener;
}

test('a draining listener version keeps its RDS subscription: a route update during the drain reaches the request of a draining connection; the routes go once it closed', async (t) => {
  const { ads, rt } = await startFedRuntime(t);
  const port = await freePort();
  await serveListeners(ads, [bodyReadingListener('in', 'one', port)]);
  await ads.waitFor(isType(ROUTE_TYPE, names('one')));
  ads.push(ROUTE_TYPE, 'r1', [answering('one', 'one')]);
  await waitFor('the first version listening', () => (rt.listeners.get('in')?.state === 'listening' ? true : undefined));

  // A request whose body is not all sent: the Lua filter waits for it, its connection stays open through the drain.
  const pending = new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) }));
    });
    req.on('error', reject);
    req.write('part');
    t.after(() => req.destroy());
    void waitFor('the request at the Lua filter', () => (rt.stats.gauge('http.in.downstream_rq_active').value === 1 ? true : undefined)).then(async () => {
      // The next version names other routes; once it serves, the first one drains.
      let from = ads.requests.length;
      ads.push(LISTENER_TYPE, 'l2', [bodyReadingListener('in', 'two', port)]);
      await ads.waitFor(isType(ROUTE_TYPE, names('one', 'two')), from);
      ads.push(ROUTE_TYPE, 'r2', [answering('one', 'one'), answering('two', 'two')]);
      await waitFor('the second version serving', async () => ((await request(port, { method: 'POST', body: 'x' })).body === 'two' ? true : undefined));
      assert.deepEqual(rt.listeners.drainingListeners().map((c) => c.name), ['in'], 'the first version drains');
      assert.deepEqual([...rt.routeNamesInUse()].sort(), ['one', 'two'], 'its routes stay in use');
      // A route update while it drains.
      from = ads.requests.length;
      ads.push(ROUTE_TYPE, 'r3', [answering('one', 'one, updated'), answering('two', 'two')]);
      await ads.waitFor(isType(ROUTE_TYPE, (r) => r.version_info === 'r3'), from);
      req.end('rest');
    }, reject);
  });
  const drained = await pending;
  assert.equal(drained.status, 200, drained.body);
  assert.equal(drained.body, 'one, updated', 'the draining connection matched its route in the updated configuration');

  // Its connection closed: the first version is gone, and its routes with it.
  const from = ads.requests.length;
  await waitFor('the draining version gone', () => (rt.listeners.drainingListeners().length === 0 ? true : undefined));
  await ads.waitFor(isType(ROUTE_TYPE, names('two')), from);
  await waitFor('the old routes dropped', () => (rt.routeTable('one') === undefined ? true : undefined));
});
