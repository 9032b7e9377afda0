// envoy.filters.network.wasm before tcp_proxy, over real sockets: proxy_on_new_connection pauses the
// connection on an HTTP call and continues it from the callback; client bytes the plugin pauses on are
// held (the upstream gets nothing) and handed to it again with the next ones; both directions are
// rewritten through buffers 2 and 3; the close callbacks get the peer types (the client closed: remote
// downstream, local upstream). A plugin that traps on the bytes closes the connection, or with
// fail_open lets them through untouched. Before http_connection_manager a plugin holds the new
// connection and hears of the client's close, and HTTP goes through.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { listenLocal, startTcpEcho } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { networkConnectionPlugin, networkPlugin, networkTrapPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { addr, configure, HCM, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import http from 'node:http';

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const WASM_NETWORK = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';

test('wasm network filter: a paused new connection, held and rewritten bytes both ways, close callbacks', async (t) => {
  let received = '';
  const echo = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', (d) => {
      received += d;
      s.write(d);
    });
    s.on('end', () => s.end());
  });
  const echoPort = await listenLocal(echo, t);
  const authz = await startUpstream('authz');
  const h = await startTestRuntime(t, [authz]);
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'network', networkPlugin);
  const wasm = { name: 'envoy.filters.network.wasm', typed_config: { '@type': WASM_NETWORK, config: { name: 'net', root_id: 'net', vm_config: { vm_id: 'net', code: { local: { filename: file } } } } } };
  await configure(h, {
    clusters: [staticCluster('echo', [echoPort]), staticCluster('authz', [authz.port])],
    listeners: [{ name: 't', address: addr(0), filter_chains: [{ filters: [wasm, { name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: 't', cluster: 'echo' } }] }] }],
  });
  const stat = (name: string) => h.rt.stats.all().find((s) => s.name === `wasmcustom.${name}`)?.value ?? 0;

  const c = net.connect(h.port('t'), '127.0.0.1');
  c.on('error', () => undefined);
  let got = '';
  c.on('data', (d) => (got += d));
  await waitFor('the plugin to call authz on the new connection', async () => (authz.requests.length === 1 ? true : undefined));
  c.write('ab');
  await waitFor('the plugin to see the first bytes', async () => (stat('wasm_test_net_data') === 1 ? true : undefined));
  assert.equal(received, '', 'bytes the plugin paused on are held');
  c.write('cd');
  await waitFor('the echo', async () => (got === 'down:up:abcd' ? true : undefined));
  assert.equal(received, 'up:abcd', 'held bytes handed again with the next ones, then rewritten');
  c.end();
  await waitFor('the close callbacks', async () => (stat('wasm_test_net_down_closed') > 0 && stat('wasm_test_net_up_closed') > 0 ? true : undefined));
  assert.equal(stat('wasm_test_net_down_closed'), 2, 'the client closed: remote');
  assert.equal(stat('wasm_test_net_up_closed'), 1, 'the upstream was closed by the proxy: local');
});

test('wasm network filter: a trap on the bytes closes the connection, or with fail_open lets them through', async (t) => {
  const echoPort = await startTcpEcho(t);
  const h = await startTestRuntime(t);
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'network-trap', networkTrapPlugin);
  const chain = (name: string, failOpen: boolean) => ({
    name,
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.wasm', typed_config: { '@type': WASM_NETWORK, config: { name, fail_open: failOpen, vm_config: { vm_id: name, code: { local: { filename: file } } } } } }, { name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: 'echo' } }] }],
  });
  await configure(h, { clusters: [staticCluster('echo', [echoPort])], listeners: [chain('closed', false), chain('open', true)] });
  const send = (listener: string) =>
    new Promise<string>((resolve) => {
      const c = net.connect(h.port(listener), '127.0.0.1', () => c.write('hello'));
      let got = '';
      c.on('data', (d) => {
        got += d;
        if (got === 'hello') c.end();
      });
      c.on('error', () => undefined);
      c.on('close', () => resolve(got));
    });
  assert.equal(await send('closed'), '', 'fail closed: the connection is closed, nothing relayed');
  assert.equal(await send('open'), 'hello', 'fail_open: the bytes go through untouched');
});

test('wasm network filter before http_connection_manager: the new connection held, HTTP through, the client close', async (t) => {
  const app = await startUpstream('app');
  const authz = await startUpstream('authz');
  const h = await startTestRuntime(t, [app, authz]);
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'network', networkConnectionPlugin);
  const wasm = { name: 'envoy.filters.network.wasm', typed_config: { '@type': WASM_NETWORK, config: { name: 'net', root_id: 'net', vm_config: { vm_id: 'net-http', code: { local: { filename: file } } } } } };
  const hcm = { name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 'h', http_filters: [ROUTER], route_config: routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]) } };
  await configure(h, { clusters: [staticCluster('app', [app.port]), staticCluster('authz', [authz.port])], listeners: [{ name: 'h', address: addr(0), filter_chains: [{ filters: [wasm, hcm] }] }] });
  const stat = (name: string) => h.rt.stats.all().find((s) => s.name === `wasmcustom.${name}`)?.value ?? 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const r = await request(h.port('h'), { agent });
  assert.equal(r.status, 200);
  assert.equal(authz.requests.length, 1, 'the new connection waited on the plugin\'s call');
  agent.destroy();
  await waitFor('the close callback', async () => (stat('wasm_test_net_down_closed') > 0 ? true : undefined));
  assert.equal(stat('wasm_test_net_down_closed'), 2, 'the client closed: remote');
  assert.equal(stat('wasm_test_net_up_closed'), 0, 'the connection manager has no upstream connection of its own');
});
