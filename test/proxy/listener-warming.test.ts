// Listener warming, as Envoy's: a listener version whose Wasm plugin's code is fetched (code.remote
// through a cluster) serves only once the module is there. A new listener of a `rig proxy -c`
// process is not bound and the proxy is not ready (/ready, /healthz/ready) while a test server holds
// the module back, so no request meets the plugin unfetched (no 503); then it serves with the
// plugin. An LDS update that changes the plugin keeps the previous version serving, the old plugin
// answering, until the new module arrives (the config dump shows both states, the warming gauge 1).
// A network Wasm filter's remote code holds its listener the same way.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { configDump } from '../../src/proxy/admin/config-dump.ts';
import { spawnRig, stopProcess } from '../helpers/cli.ts';
import { listenLocal } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { addHeaderPlugin, buildPlugin, networkPlugin } from '../helpers/wasm-plugins.ts';
import { addr, CLUSTER_TYPE, httpListener, LISTENER_TYPE, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster, type Reply } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const WASM_NETWORK = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const STRING_VALUE = 'type.googleapis.com/google.protobuf.StringValue';

/** The plugin with remote code fetched through cluster `code`; its configuration comes back as x-wasm-config. */
function remoteWasm(name: string, file: string, module: Buffer, type = WASM) {
  const sha256 = crypto.createHash('sha256').update(module).digest('hex');
  return {
    name: type === WASM ? 'envoy.filters.http.wasm' : 'envoy.filters.network.wasm',
    typed_config: {
      '@type': type,
      config: { name, configuration: { '@type': STRING_VALUE, value: name }, vm_config: { vm_id: name, code: { remote: { http_uri: { uri: `http://code.local/${file}`, cluster: 'code', timeout: '10s' }, sha256 } } } },
    },
  };
}

/** A server of modules by path; a held path answers once released. */
function moduleServer(modules: Record<string, Buffer>) {
  const held = new Map<string, { promise: Promise<void>; release: () => void }>();
  const asked: string[] = [];
  const server = http.createServer((req, res) => {
    const file = req.url?.slice(1) ?? '';
    asked.push(file);
    const module = modules[file];
    if (!module) return void res.writeHead(404).end();
    void (held.get(file)?.promise ?? Promise.resolve()).then(() => res.writeHead(200, { 'content-type': 'application/wasm' }).end(module));
  });
  const hold = (file: string) => {
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    held.set(file, { promise, release });
  };
  const release = (file: string) => held.get(file)?.release();
  return { server, asked, hold, release };
}

/** A module that behaves as `module` and has another sha256 (a custom section appended). */
function variant(module: Buffer, tag: string): Buffer {
  const name = Buffer.from(tag);
  return Buffer.concat([module, Buffer.from([0, name.length + 1, name.length]), name]);
}

const reply = (port: number): Promise<Reply | string> => request(port).catch((e: NodeJS.ErrnoException) => e.code ?? e.message);

test('a new listener whose Wasm code is fetched is not bound, and the proxy not ready, until the module arrives; then the plugin answers', async (t) => {
  const dir = tempDir(t, 'rig-warming-');
  const module = await buildPlugin(addHeaderPlugin);
  const code = moduleServer({ 'plugin.wasm': module });
  code.hold('plugin.wasm');
  const codePort = await listenLocal(code.server, t);
  t.after(() => code.server.closeAllConnections());
  const app = await startUpstream('app');
  t.after(() => app.close());
  const [listenerPort, adminPort, readyPort] = [await freePort(), await freePort(), await freePort()];
  const bootstrap = {
    static_resources: {
      listeners: [httpListener('in', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [remoteWasm('greeting', 'plugin.wasm', module), ROUTER] }, { address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } } })],
      clusters: [staticCluster('app', [app.port]), staticCluster('code', [codePort])],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const child = spawnRig(['proxy', '-c', file, '--admin-port', String(adminPort), '--ready-port', String(readyPort), '--stats-port', '0']);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.after(() => stopProcess(child));
  const admin = (p: string) => fetch(`http://127.0.0.1:${adminPort}${p}`).then(async (r) => ({ status: r.status, body: await r.text() }));

  await waitFor(() => `the module asked for while the admin serves\n${log}`, async () => (code.asked.length && (await admin('/ready')) ? true : undefined), 60_000);
  assert.deepEqual(await admin('/ready'), { status: 503, body: 'INITIALIZING\n' });
  assert.equal((await fetch(`http://127.0.0.1:${readyPort}/healthz/ready`)).status, 503);
  assert.match((await admin('/stats?filter=^listener_manager')).body, /listener_manager\.total_listeners_warming: 1\n/);
  for (let i = 0; i < 3; i++) assert.equal(await reply(listenerPort), 'ECONNREFUSED', 'a warming listener is not bound: no request meets the plugin unfetched');

  code.release('plugin.wasm');
  const served = await waitFor(() => `the listener serving with the plugin\n${log}`, async () => {
    const r = await reply(listenerPort);
    return typeof r === 'object' ? r : undefined;
  });
  assert.equal(served.status, 200);
  assert.equal(served.headers['x-wasm-config'], 'greeting', 'the first answer already has the plugin');
  await waitFor('the proxy ready', async () => ((await admin('/ready')).status === 200 ? true : undefined));
  assert.equal((await fetch(`http://127.0.0.1:${readyPort}/healthz/ready`)).status, 200);
  assert.match((await admin('/stats?filter=^listener_manager')).body, /listener_manager\.total_listeners_warming: 0\n/);
  assert.match((await admin('/stats?filter=^listener_manager')).body, /listener_manager\.total_listeners_active: 1\n/);
});

test('an LDS update that changes the plugin keeps the previous version answering, never a 503, until the new module arrives', async (t) => {
  const one = await buildPlugin(addHeaderPlugin);
  const two = variant(one, 'two');
  const code = moduleServer({ 'one.wasm': one, 'two.wasm': two });
  const codePort = await listenLocal(code.server, t);
  t.after(() => code.server.closeAllConnections());
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  const listener = (plugin: ReturnType<typeof remoteWasm>) => httpListener('in', route, { http_filters: [plugin, ROUTER] });
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('app', [app.port]), staticCluster('code', [codePort])]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener(remoteWasm('one', 'one.wasm', one))]), []);
  await h.rt.settled();
  const port = h.port('in');
  assert.equal((await request(port)).headers['x-wasm-config'], 'one', 'the first version serves once its module is fetched');

  code.hold('two.wasm');
  assert.deepEqual(h.rt.apply(LISTENER_TYPE, new Map([['in', listener(remoteWasm('two', 'two.wasm', two))]]), '2'), []);
  await waitFor('the new module asked for', () => (code.asked.includes('two.wasm') ? true : undefined));
  for (let i = 0; i < 5; i++) {
    const r = await request(port);
    assert.equal(r.status, 200, 'the previous version serves while the new one warms');
    assert.equal(r.headers['x-wasm-config'], 'one');
  }
  assert.equal(h.rt.stats.gauge('listener_manager.total_listeners_warming').value, 1);
  const dump = configDump(h.rt, {}, { includeEds: false }) as { configs: { dynamic_listeners?: { name: string; active_state?: { version_info: string }; warming_state?: { version_info: string } }[] }[] };
  const dl = dump.configs.flatMap((c) => c.dynamic_listeners ?? []).find((l) => l.name === 'in');
  assert.equal(dl?.active_state?.version_info, '', 'active_state: the version serving');
  assert.equal(dl?.warming_state?.version_info, '2', 'warming_state: the version waiting for its module');

  code.release('two.wasm');
  await waitFor('the new plugin answering', async () => ((await request(port)).headers['x-wasm-config'] === 'two' ? true : undefined));
  assert.equal(h.rt.stats.gauge('listener_manager.total_listeners_warming').value, 0);
  assert.equal(h.port('in'), port, 'swapped in place, on the same bound port');
});

test('a TCP listener whose network Wasm filter has remote code warms the same way: not in service until the module arrives', async (t) => {
  const module = await buildPlugin(networkPlugin);
  const code = moduleServer({ 'net.wasm': module });
  code.hold('net.wasm');
  const codePort = await listenLocal(code.server, t);
  t.after(() => code.server.closeAllConnections());
  const echo = net.createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await listenLocal(echo, t);
  const authz = await startUpstream('authz');
  const h = await startTestRuntime(t, [authz]);
  const clusters = [staticCluster('echo', [(echo.address() as AddressInfo).port]), staticCluster('authz', [authz.port]), staticCluster('code', [codePort])];
  assert.deepEqual(h.apply(CLUSTER_TYPE, clusters), []);
  const filters = [remoteWasm('net', 'net.wasm', module, WASM_NETWORK), { name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: 't', cluster: 'echo' } }];
  assert.deepEqual(h.apply(LISTENER_TYPE, [{ name: 't', address: addr(0), filter_chains: [{ filters }] }]), []);
  await waitFor('the module asked for', () => (code.asked.includes('net.wasm') ? true : undefined));
  assert.equal(h.rt.listeners.get('t'), undefined, 'not in service (not bound) while warming');
  assert.deepEqual(h.rt.listeners.warmingListeners().map((c) => c.name), ['t']);
  assert.equal(h.rt.state(), 'INITIALIZING');

  code.release('net.wasm');
  await h.rt.settled();
  assert.equal(h.rt.state(), 'LIVE');
  const c = net.connect(h.port('t'), '127.0.0.1');
  c.on('error', () => undefined);
  let got = '';
  c.on('data', (d) => (got += d));
  c.write('abcd');
  await waitFor('the echo through the plugin', () => (got === 'down:up:abcd' ? true : undefined));
  c.end();
});
