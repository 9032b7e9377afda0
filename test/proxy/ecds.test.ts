// Envoy's extension config discovery (ECDS) in rig proxy, driven by a test ADS server over real
// sockets: a filter with config_discovery takes its config from a TypedExtensionConfig of its name.
// A new listener warms until the config arrives (not bound); then the config applies, an update
// reaches the next request on the same keep-alive connection with no listener update nor drain; a
// config of a type not in type_urls, or one its filter refuses, is NACKed and the previous one kept
// (config_fail); with default_config and apply_default_config_without_warming the listener serves at
// once; without a config after initial_fetch_timeout a stream is answered 500 with the NFCF flag;
// a stream in flight keeps the filter it started with; network filters (a network RBAC filter
// before tcp_proxy) take their config for new connections;
// /config_dump shows the configs in Envoy's EcdsConfigDump, the Wasm pull secret redacted.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { CLUSTER_TYPE, EXTENSION_CONFIG_TYPE, FILE_ACCESS_LOG_TYPE, LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { configDump } from '../../src/proxy/admin/config-dump.ts';
import type { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { startTcpEcho } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { addHeaderPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import type { AdsTestServer, RecordedRequest } from '../xds-client/ads-test-server.ts';
import { addr, HCM, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import { startFedRuntime } from './fed-runtime.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const HTTP_RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const NETWORK_RBAC = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';
const PULL_SECRET = 'ISTIO_META_WASM_IMAGE_PULL_SECRET';

/** The config_discovery istiod writes for a WasmPlugin, with this initial_fetch_timeout. */
function discovery(timeout: string, extra: EnvoyJson = {}): EnvoyJson {
  return { config_source: { ads: {}, initial_fetch_timeout: timeout, resource_api_version: 'V3' }, type_urls: [WASM, HTTP_RBAC], ...extra };
}

/** A listener answering 200 "ok" behind the HTTP filter `ext` taken over ECDS; with an access log of "%RESPONSE_CODE% %RESPONSE_FLAGS%" when `logFile`. */
function ecdsListener(name: string, source: EnvoyJson, logFile?: string): EnvoyJson {
  const route = routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }]);
  const accessLog = logFile ? { access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: logFile, log_format: { text_format_source: { inline_string: '%RESPONSE_CODE% %RESPONSE_FLAGS%\n' } } } }] } : {};
  return {
    name,
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: route, http_filters: [{ name: 'ext', config_discovery: source }, ROUTER], ...accessLog } }] }],
  };
}

/** The extension config `ext`: the add-header plugin whose response header x-wasm-config carries `configuration`. */
function wasmConfig(file: string, configuration: string, env: Record<string, string> = {}, vmId = 'ext'): EnvoyJson {
  return {
    name: 'ext',
    typed_config: { '@type': WASM, config: { name: 'ext', vm_config: { vm_id: vmId, runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: file } }, ...(Object.keys(env).length ? { environment_variables: { key_values: env } } : {}) }, configuration: { '@type': STRING_VALUE, value: configuration } } },
  };
}

const isType = (typeUrl: string, pred: (r: RecordedRequest) => boolean = () => true) => (r: RecordedRequest) => r.type_url === typeUrl && pred(r);
const names = (...n: string[]) => (r: RecordedRequest) => JSON.stringify(r.resource_names ?? []) === JSON.stringify(n);

async function serve(ads: AdsTestServer, listeners: EnvoyJson[], clusters: EnvoyJson[] = []): Promise<void> {
  await ads.waitFor(isType(CLUSTER_TYPE));
  ads.push(CLUSTER_TYPE, 'c1', clusters);
  await ads.waitFor(isType(LISTENER_TYPE));
  ads.push(LISTENER_TYPE, 'l1', listeners);
}

const stat = (rt: ProxyRuntime, name: string) => rt.stats.counter(name).value;
const listening = (rt: ProxyRuntime, name: string) => (rt.listeners.get(name)?.state === 'listening' ? rt.listeners.get(name)!.boundPort : undefined);

/** GET / on a keep-alive agent: status, the plugin's header, and the client port of the connection it went on. */
function get(port: number, agent: http.Agent): Promise<{ status: number; config: string | undefined; clientPort: number; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, config: res.headers['x-wasm-config'] as string | undefined, clientPort: req.socket!.localPort!, connection: res.headers.connection }));
    });
    req.on('error', reject);
  });
}

test('a listener warms until its ECDS config arrives; an update reaches the next request on the same keep-alive connection without a listener update or drain; bad configs are NACKed and the previous kept; config_dump shows ecds_filters', async (t) => {
  const { ads, rt } = await startFedRuntime(t);
  const file = await writePlugin(tempDir(t, 'ecds-'), 'header', addHeaderPlugin);
  await serve(ads, [ecdsListener('in', discovery('0s'))]);
  await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, names('ext')));
  await waitFor('the listener warming', () => (rt.stats.gauge('listener_manager.total_listeners_warming').value === 1 ? true : undefined));
  assert.equal(rt.listeners.get('in'), undefined, 'not in service while its filter has no config');

  ads.push(EXTENSION_CONFIG_TYPE, 'e1', [wasmConfig(file, 'one', { [PULL_SECRET]: '{"auths":{"r":{"auth":"c2VjcmV0"}}}' })]);
  const port = await waitFor('the listener serving', () => listening(rt, 'in'));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const first = await get(port, agent);
  assert.equal(first.status, 200);
  assert.equal(first.config, 'one', 'the first request already runs the discovered plugin');
  assert.equal(stat(rt, 'extension_config_discovery.http_filter.ext.config_reload'), 1);

  const dump = configDump(rt, {}, { includeEds: false }) as { configs: EnvoyJson[] };
  const ecds = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.EcdsConfigDump') as { ecds_filters: { version_info: string; ecds_filter: EnvoyJson; last_updated: string }[] };
  assert.equal(ecds.ecds_filters.length, 1);
  assert.equal(ecds.ecds_filters[0].version_info, 'e1');
  assert.equal(ecds.ecds_filters[0].ecds_filter['@type'], EXTENSION_CONFIG_TYPE);
  assert.equal(ecds.ecds_filters[0].ecds_filter.name, 'ext');
  assert.ok(ecds.ecds_filters[0].last_updated);
  assert.doesNotMatch(JSON.stringify(ecds), /c2VjcmV0/, 'the Wasm pull secret is redacted');
  assert.match(JSON.stringify(ecds), new RegExp(`${PULL_SECRET}":"\\[redacted\\]`));

  const serving = rt.listeners.get('in')!.config;
  ads.push(EXTENSION_CONFIG_TYPE, 'e2', [wasmConfig(file, 'two')]);
  await waitFor('the update applied', () => (stat(rt, 'extension_config_discovery.http_filter.ext.config_reload') === 2 ? true : undefined));
  const second = await get(port, agent);
  assert.equal(second.config, 'two', 'the next request runs the new config');
  assert.equal(second.clientPort, first.clientPort, 'on the same keep-alive connection');
  assert.notEqual(second.connection, 'close', 'the connection is not drained');
  assert.equal(rt.listeners.get('in')!.config, serving, 'the same listener version serves: no listener update, no drain');

  // A type not in type_urls: NACK naming it, the previous config kept.
  let from = ads.requests.length;
  let nonce = ads.push(EXTENSION_CONFIG_TYPE, 'e3', [{ name: 'ext', typed_config: { '@type': FAULT, abort: { http_status: 503, percentage: { numerator: 100 } } } }]);
  let nack = await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, (r) => r.response_nonce === nonce), from);
  assert.match(nack.error_detail?.message ?? '', /HTTPFault is not one of the filter's config_discovery\.type_urls/);
  assert.equal(nack.version_info, 'e2', 'the NACK carries the version kept');
  // A config the filter refuses (no vm_config): NACK, the previous config kept.
  from = ads.requests.length;
  nonce = ads.push(EXTENSION_CONFIG_TYPE, 'e4', [{ name: 'ext', typed_config: { '@type': WASM, config: { name: 'ext' } } }]);
  nack = await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, (r) => r.response_nonce === nonce), from);
  assert.match(nack.error_detail?.message ?? '', /vm_config/);
  assert.equal(stat(rt, 'extension_config_discovery.http_filter.ext.config_fail'), 2);
  const third = await get(port, agent);
  assert.equal(third.config, 'two', 'still the last good config');
  assert.equal(third.clientPort, first.clientPort);
});

test('with default_config and apply_default_config_without_warming the listener serves at once with the default; the discovered config replaces it; an unsupported field in it is a warning', async (t) => {
  const { ads, rt, log } = await startFedRuntime(t);
  const file = await writePlugin(tempDir(t, 'ecds-'), 'header', addHeaderPlugin);
  // The default: an RBAC filter denying everything (what Istio's agent puts in place of a Wasm plugin that failed closed).
  await serve(ads, [ecdsListener('in', discovery('0s', { default_config: { '@type': HTTP_RBAC, rules: {} }, apply_default_config_without_warming: true }))]);
  await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, names('ext')));
  const port = await waitFor('the listener serving without warming', () => listening(rt, 'in'));
  assert.equal(rt.stats.gauge('listener_manager.total_listeners_warming').value, 0);
  assert.equal((await request(port)).status, 403, 'the default config (deny) is in force');

  ads.push(EXTENSION_CONFIG_TYPE, 'e1', [wasmConfig(file, 'discovered')]);
  const r = await waitFor('the discovered config', async () => {
    const res = await request(port);
    return res.status === 200 ? res : undefined;
  });
  assert.equal(r.headers['x-wasm-config'], 'discovered');

  // A field rig proxy does not implement is applied without it and named in a warning, never dropped silently.
  const restricted = wasmConfig(file, 'restricted');
  ((restricted.typed_config as EnvoyJson).config as EnvoyJson).capability_restriction_config = { allowed_capabilities: { proxy_log: {} } };
  ads.push(EXTENSION_CONFIG_TYPE, 'e2', [restricted]);
  await waitFor('the restricted config', async () => ((await request(port)).headers['x-wasm-config'] === 'restricted' ? true : undefined));
  assert.match(String(rt.warnings.get(EXTENSION_CONFIG_TYPE)), /extension config "ext": .*capability_restriction_config: capability restrictions are not enforced/);
  assert.match(log.join(''), /extension configs: 1 unsupported field\(s\) ignored/);

  // The listener no longer names it: unsubscribed, and gone from config_dump.
  const from = ads.requests.length;
  ads.push(LISTENER_TYPE, 'l2', [{ ...ecdsListener('in', discovery('0s')), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'in', route_config: routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]), http_filters: [ROUTER] } }] }] }]);
  await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, names()), from);
  await waitFor('the extension config dropped', () => {
    const dump = configDump(rt, {}, { includeEds: false }) as { configs: EnvoyJson[] };
    return dump.configs.some((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.EcdsConfigDump') ? undefined : true;
  });
});

test('without a config after initial_fetch_timeout and without a default, a stream is answered 500 with the NFCF response flag; the config applies when it comes', async (t) => {
  const { ads, rt, log } = await startFedRuntime(t);
  const dir = tempDir(t, 'ecds-');
  const file = await writePlugin(dir, 'header', addHeaderPlugin);
  const accessLog = path.join(dir, 'access.log');
  await serve(ads, [ecdsListener('in', discovery('0.2s'), accessLog)]);
  await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, names('ext')));
  const port = await waitFor('the listener live after the timeout', () => listening(rt, 'in'));
  assert.ok(log.some((l) => l.includes('initial_fetch_timeout') && l.includes('"extensionConfig":"ext"')), 'the timeout is logged, naming the config');
  const r = await request(port);
  assert.equal(r.status, 500);
  assert.equal(r.body, '');
  const line = await waitFor('the access log line', () => (fs.existsSync(accessLog) && fs.readFileSync(accessLog, 'utf8').trim()) || undefined);
  assert.equal(line, '500 NFCF');

  ads.push(EXTENSION_CONFIG_TYPE, 'e1', [wasmConfig(file, 'late')]);
  const ok = await waitFor('the config applied once it came', async () => {
    const res = await request(port);
    return res.status === 200 ? res : undefined;
  });
  assert.equal(ok.headers['x-wasm-config'], 'late');
});

test('a network filter over ECDS: connections are closed without a config (network_extension_config_missing); new connections take each config, an established one keeps its own', async (t) => {
  const { ads, rt } = await startFedRuntime(t);
  const echoPort = await startTcpEcho(t);
  const listener = {
    name: 'tcp',
    address: addr(0),
    filter_chains: [
      {
        filters: [
          { name: 'net-ext', config_discovery: { config_source: { ads: {}, initial_fetch_timeout: '0.2s', resource_api_version: 'V3' }, type_urls: [NETWORK_RBAC] } },
          { name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: 'tcp', cluster: 'echo' } },
        ],
      },
    ],
  };
  await serve(ads, [listener], [staticCluster('echo', [echoPort])]);
  await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, names('net-ext')));
  const port = await waitFor('the listener live after the timeout', () => listening(rt, 'tcp'));
  assert.equal(await echo(port, 'a'), 'closed');
  assert.equal(stat(rt, "listener.127.0.0.1_0.network_extension_config_missing"), 1, "counted under the listener (its address as configured)");

  // Allow all (an RBAC filter without rules): connections relay.
  ads.push(EXTENSION_CONFIG_TYPE, 'e1', [{ name: 'net-ext', typed_config: { '@type': NETWORK_RBAC, stat_prefix: 'allow' } }]);
  await waitFor('the config applied', () => (stat(rt, 'extension_config_discovery.network_filter.net-ext.config_reload') === 1 ? true : undefined));
  const held = await open(port);
  t.after(() => held.destroy());
  assert.equal(await say(held, 'b'), 'b');

  // Deny all (empty rules): new connections are closed, the established one keeps its config.
  ads.push(EXTENSION_CONFIG_TYPE, 'e2', [{ name: 'net-ext', typed_config: { '@type': NETWORK_RBAC, stat_prefix: 'deny', rules: {} } }]);
  await waitFor('the update applied', () => (stat(rt, 'extension_config_discovery.network_filter.net-ext.config_reload') === 2 ? true : undefined));
  assert.equal(await echo(port, 'c'), 'closed');
  assert.equal(await say(held, 'd'), 'd', 'the established connection goes on');

  // An HTTP filter type for a network filter: NACK.
  const from = ads.requests.length;
  const nonce = ads.push(EXTENSION_CONFIG_TYPE, 'e3', [{ name: 'net-ext', typed_config: { '@type': HTTP_RBAC } }]);
  const nack = await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, (r) => r.response_nonce === nonce), from);
  assert.match(nack.error_detail?.message ?? '', /not one of the filter's config_discovery\.type_urls/);
});

function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** Writes `text` on `s` and resolves with the echo ('closed' when the connection ends first). */
function say(s: net.Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    const done = (v: string) => {
      s.off('data', onData);
      s.off('close', onClose);
      resolve(v);
    };
    const onData = (d: Buffer) => done(d.toString());
    const onClose = () => done('closed');
    s.on('data', onData);
    s.on('close', onClose);
    s.write(text);
  });
}

async function echo(port: number, text: string): Promise<string> {
  const s = await open(port).catch(() => undefined);
  if (!s) return 'closed';
  s.on('error', () => undefined);
  const v = await say(s, text);
  s.destroy();
  return v;
}

test("remote Wasm code over ECDS is fetched as Istio's agent does before the config applies and is ACKed (the previous one serves meanwhile); a fetch that fails (404) is no NACK: the ACK comes once it failed, the plugin failing closed (403) as the agent's deny RBAC filter", async (t) => {
  const dir = tempDir(t, 'ecds-remote-');
  process.env.RIG_WASM_CACHE_DIR = path.join(dir, 'cache');
  t.after(() => delete process.env.RIG_WASM_CACHE_DIR);
  const file = await writePlugin(dir, 'header', addHeaderPlugin);
  const bytes = fs.readFileSync(file);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let fetches = 0;
  let missing = 0;
  const server = http.createServer((req, res) => {
    if (req.url !== '/plugin.wasm') return void (missing++, res.writeHead(404).end());
    fetches++;
    void gate.then(() => res.end(bytes));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const codePort = (server.address() as net.AddressInfo).port;
  const remote = (url: string, configuration: string, policy: string) => ({
    name: 'ext',
    typed_config: { '@type': WASM, config: { name: 'ext', failure_policy: policy, vm_config: { vm_id: 'ext', runtime: 'envoy.wasm.runtime.v8', code: { remote: { http_uri: { uri: url, cluster: '_', timeout: '1s' } } } }, configuration: { '@type': STRING_VALUE, value: configuration } } },
  });

  const { ads, rt } = await startFedRuntime(t);
  await serve(ads, [ecdsListener('in', discovery('0s'))]);
  await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, names('ext')));
  ads.push(EXTENSION_CONFIG_TYPE, 'e1', [wasmConfig(file, 'local')]);
  const port = await waitFor('the listener serving', () => listening(rt, 'in'));

  const before = ads.requests.length;
  const fetching = ads.push(EXTENSION_CONFIG_TYPE, 'e2', [remote(`http://127.0.0.1:${codePort}/plugin.wasm`, 'remote', 'FAIL_CLOSED')]);
  await waitFor('the module requested', () => (fetches > 0 ? true : undefined));
  // A later update of another type is ACKed on the same stream; the ECDS one is not yet (the fetch holds it, as the agent holds it from Envoy).
  const later = ads.push(CLUSTER_TYPE, 'c2', []);
  await ads.waitFor(isType(CLUSTER_TYPE, (r) => r.response_nonce === later), before);
  assert.equal(ads.requests.slice(before).find(isType(EXTENSION_CONFIG_TYPE, (r) => r.response_nonce === fetching)), undefined, 'no ACK before the module server answered');
  assert.equal((await request(port)).headers['x-wasm-config'], 'local', 'until the module is fetched the previous config serves');
  release();
  const acked = await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, (r) => r.response_nonce === fetching), before);
  assert.equal(acked.error_detail, undefined);
  assert.equal(acked.version_info, 'e2');
  assert.equal((await request(port)).headers['x-wasm-config'], 'remote', 'ACKed once the fetched plugin is in force');

  const from = ads.requests.length;
  const nonce = ads.push(EXTENSION_CONFIG_TYPE, 'e3', [remote(`http://127.0.0.1:${codePort}/missing.wasm`, 'missing', 'FAIL_CLOSED')]);
  const ack = await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, (r) => r.response_nonce === nonce), from);
  assert.equal(ack.error_detail, undefined, 'a module that cannot be fetched is not NACKed (the agent substitutes a filter)');
  assert.equal(missing, 1, 'ACKed once the module server answered 404 (not retried, as by the agent)');
  const denied = await request(port);
  assert.equal(denied.status, 403, "at the ACK the plugin fails closed, as the agent's deny RBAC filter");
  assert.equal(denied.body, 'RBAC: access denied');
});

test('config_discovery that rig proxy cannot serve is refused with the listener, naming the field: a source other than ADS, an unknown type, a default of another type, a terminal network filter', (t) => {
  return startTestRuntime(t).then((h) => {
    const refused = (source: EnvoyJson) => h.apply(LISTENER_TYPE, [ecdsListener('l', source)]).join('\n');
    assert.match(refused({ config_source: { api_config_source: { api_type: 'GRPC' } }, type_urls: [WASM] }), /config_discovery\.config_source\.api_config_source: rig proxy fetches extension configs over its ADS stream only/);
    assert.match(refused({ config_source: { ads: {} }, type_urls: ['type.googleapis.com/example.Unknown'] }), /config_discovery\.type_urls\[0\]: no HTTP filter of rig proxy takes type\.googleapis\.com\/example\.Unknown/);
    assert.match(refused({ config_source: { ads: {} }, type_urls: [WASM], default_config: { '@type': HTTP_RBAC } }), /default_config: the default config's type .*RBAC is not one of type_urls/);
    assert.match(refused({ config_source: { ads: {} }, type_urls: [WASM], apply_default_config_without_warming: true }), /apply_default_config_without_warming: needs a default_config/);
    const terminal = { name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'tcp', config_discovery: { config_source: { ads: {} }, type_urls: [TCP_PROXY] } }] }] };
    assert.match(h.apply(LISTENER_TYPE, [terminal]).join('\n'), /cannot take its config over ECDS/);
    assert.equal(h.rt.listeners.get('l'), undefined);
  });
});

test('a stream in flight keeps the config it started with; the next stream gets the update', async (t) => {
  let hold!: (res: http.ServerResponse) => void;
  const held = new Promise<http.ServerResponse>((r) => (hold = r));
  const app = await startUpstream('app', (req, res) => {
    if (req.url !== '/slow') return false;
    hold(res);
    return true;
  });
  t.after(() => app.close());
  const { ads, rt } = await startFedRuntime(t);
  const file = await writePlugin(tempDir(t, 'ecds-'), 'header', addHeaderPlugin);
  const listener = ecdsListener('in', discovery('0s'));
  const hcm = ((listener.filter_chains as EnvoyJson[])[0].filters as EnvoyJson[])[0].typed_config as EnvoyJson;
  hcm.route_config = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  await serve(ads, [listener], [staticCluster('app', [app.port])]);
  await ads.waitFor(isType(EXTENSION_CONFIG_TYPE, names('ext')));
  // Two VMs (the test plugin keeps its configuration in VM globals, which a VM shared by both configs would share).
  ads.push(EXTENSION_CONFIG_TYPE, 'e1', [wasmConfig(file, 'old', {}, 'vm-old')]);
  const port = await waitFor('the listener serving', () => listening(rt, 'in'));

  const slow = request(port, { path: '/slow' });
  const res = await held; // the stream's filters were built: its request is at the upstream
  ads.push(EXTENSION_CONFIG_TYPE, 'e2', [wasmConfig(file, 'new', {}, 'vm-new')]);
  await waitFor('the update applied', () => (stat(rt, 'extension_config_discovery.http_filter.ext.config_reload') === 2 ? true : undefined));
  assert.equal((await request(port, { path: '/fast' })).headers['x-wasm-config'], 'new', 'a new stream gets the update');
  res.writeHead(200).end('slow');
  const r = await slow;
  assert.equal(r.body, 'slow');
  assert.equal(r.headers['x-wasm-config'], 'old', 'the stream in flight answers with the filter (and config) it started with');
});
