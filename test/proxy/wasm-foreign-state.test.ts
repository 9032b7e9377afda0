// Envoy's declare_property and set_envoy_filter_state foreign functions in a `rig proxy -c` process.
// One plugin declares a readonly string property for the request and a readonly bytes property for
// the connection, then sets them: a second set of a readonly property is refused (BadArgument), a
// second declaration too. Another plugin, in another VM, reads both back with proxy_get_property and
// the request ones through CEL's filter_state (a string, and bytes); the connection's value
// outlives its request. A network
// plugin names tcp_proxy's cluster (envoy.tcp_proxy.cluster), and a key rig proxy does not honour
// (envoy.network.upstream_server_name) answers NotFound with one warning naming it. An HTTP plugin
// sets the ALPN a TLS upstream is offered (envoy.network.application_protocols).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { makePki } from './certs.ts';
import { HCM, request, ROUTER, startUpstream } from './harness.ts';

// envoy.source.extensions.common.wasm's enums (declare_property.proto).
const STRING = 1;
const BYTES = 0;
const DOWNSTREAM_REQUEST = 1;
const DOWNSTREAM_CONNECTION = 2;

/** DeclarePropertyArguments { name = 1; readonly = 2; type = 3; schema = 4; span = 5 }. */
function declareArgs(name: string, readonly: boolean, type: number, span: number): Buffer {
  return Buffer.from(protobuf.Writer.create().uint32(10).string(name).uint32(16).bool(readonly).uint32(24).int32(type).uint32(40).int32(span).finish());
}

/** SetEnvoyFilterStateArguments { path = 1; value = 2; span = 3 }. */
function filterStateArgs(key: string, value: string): Buffer {
  return Buffer.from(protobuf.Writer.create().uint32(10).string(key).uint32(18).string(value).finish());
}

const DIGIT = `
  (func $digit (param $hp i32) (param $hn i32) (param $code i32)
    (drop (call $proxy_add_header_map_value (i32.const 0) (local.get $hp) (local.get $hn) (i32.add (i32.const $codes$) (local.get $code)) (i32.const 1))))`;

/**
 * Configure: declares my_prop (readonly string, request), conn_prop (readonly bytes, connection) and
 * my_bytes (bytes, request), then my_prop again. Request headers: sets my_prop "first" then
 * "second", conn_prop to the request path, my_bytes to 00 01 61; the result codes go upstream as
 * x-declare, x-redeclare, x-set1, x-set2, x-conn-set.
 */
const declarePlugin: PluginSource = {
  strings: {
    declare: 'declare_property', prop: declareArgs('my_prop', true, STRING, DOWNSTREAM_REQUEST), conn: declareArgs('conn_prop', true, BYTES, DOWNSTREAM_CONNECTION),
    bytes: declareArgs('my_bytes', false, BYTES, DOWNSTREAM_REQUEST), bytesName: 'my_bytes', bytesValue: Buffer.from([0, 1, 0x61]),
    propName: 'my_prop', connName: 'conn_prop', first: 'first', second: 'second', path: 'request\0path', codes: '0123456789',
    hdeclare: 'x-declare', hredeclare: 'x-redeclare', hset1: 'x-set1', hset2: 'x-set2', hconn: 'x-conn-set',
  },
  imports: ['proxy_call_foreign_function', 'proxy_add_header_map_value', 'proxy_set_property', 'proxy_get_property'],
  body: `
  (global $declared (mut i32) (i32.const 9))
  (global $redeclared (mut i32) (i32.const 9))
  ${DIGIT}
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (global.set $declared (call $proxy_call_foreign_function (i32.const $declare$) (i32.const #declare#) (i32.const $prop$) (i32.const #prop#) (i32.const 16) (i32.const 20)))
    (drop (call $proxy_call_foreign_function (i32.const $declare$) (i32.const #declare#) (i32.const $conn$) (i32.const #conn#) (i32.const 16) (i32.const 20)))
    (drop (call $proxy_call_foreign_function (i32.const $declare$) (i32.const #declare#) (i32.const $bytes$) (i32.const #bytes#) (i32.const 16) (i32.const 20)))
    (global.set $redeclared (call $proxy_call_foreign_function (i32.const $declare$) (i32.const #declare#) (i32.const $prop$) (i32.const #prop#) (i32.const 16) (i32.const 20)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $digit (i32.const $hdeclare$) (i32.const #hdeclare#) (global.get $declared))
    (call $digit (i32.const $hredeclare$) (i32.const #hredeclare#) (global.get $redeclared))
    (call $digit (i32.const $hset1$) (i32.const #hset1#) (call $proxy_set_property (i32.const $propName$) (i32.const #propName#) (i32.const $first$) (i32.const #first#)))
    (call $digit (i32.const $hset2$) (i32.const #hset2#) (call $proxy_set_property (i32.const $propName$) (i32.const #propName#) (i32.const $second$) (i32.const #second#)))
    (drop (call $proxy_set_property (i32.const $bytesName$) (i32.const #bytesName#) (i32.const $bytesValue$) (i32.const #bytesValue#)))
    (drop (call $proxy_get_property (i32.const $path$) (i32.const #path#) (i32.const 16) (i32.const 20)))
    (call $digit (i32.const $hconn$) (i32.const #hconn#) (call $proxy_set_property (i32.const $connName$) (i32.const #connName#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))
    (i32.const 0))`,
};

/**
 * Request headers: x-prop and x-conn from proxy_get_property, x-cel from CEL filter_state['wasm.my_prop'],
 * x-cel-bytes 1 when CEL's filter_state['wasm.my_bytes'] is those bytes.
 */
const readerPlugin: PluginSource = {
  strings: {
    create: 'expr_create', evaluate: 'expr_evaluate', expr: "filter_state['wasm.my_prop']", bexpr: "filter_state['wasm.my_bytes'] == b'\\x00\\x01a'",
    hbytes: 'x-cel-bytes', one: '1', zero: '0', propName: 'my_prop', connName: 'conn_prop', hprop: 'x-prop', hconn: 'x-conn', hcel: 'x-cel' },
  imports: ['proxy_call_foreign_function', 'proxy_add_header_map_value', 'proxy_get_property'],
  body: `
  (func $header (param $hp i32) (param $hn i32)
    (drop (call $proxy_add_header_map_value (i32.const 0) (local.get $hp) (local.get $hn) (i32.load (i32.const 16)) (i32.load (i32.const 20)))))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_call_foreign_function (i32.const $create$) (i32.const #create#) (i32.const $expr$) (i32.const #expr#) (i32.const 16) (i32.const 20)))
    (i32.store (i32.const 32) (i32.load (i32.load (i32.const 16))))
    (drop (call $proxy_call_foreign_function (i32.const $create$) (i32.const #create#) (i32.const $bexpr$) (i32.const #bexpr#) (i32.const 16) (i32.const 20)))
    (i32.store (i32.const 36) (i32.load (i32.load (i32.const 16))))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $proxy_call_foreign_function (i32.const $evaluate$) (i32.const #evaluate#) (i32.const 36) (i32.const 4) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $hbytes$) (i32.const #hbytes#)
        (select (i32.const $one$) (i32.const $zero$) (i32.load8_u (i32.load (i32.const 16)))) (i32.const 1)))))
    (if (i32.eqz (call $proxy_get_property (i32.const $propName$) (i32.const #propName#) (i32.const 16) (i32.const 20)))
      (then (call $header (i32.const $hprop$) (i32.const #hprop#))))
    (if (i32.eqz (call $proxy_get_property (i32.const $connName$) (i32.const #connName#) (i32.const 16) (i32.const 20)))
      (then (call $header (i32.const $hconn$) (i32.const #hconn#))))
    (if (i32.eqz (call $proxy_call_foreign_function (i32.const $evaluate$) (i32.const #evaluate#) (i32.const 32) (i32.const 4) (i32.const 16) (i32.const 20)))
      (then (call $header (i32.const $hcel$) (i32.const #hcel#))))
    (i32.const 0))`,
};

/**
 * A new connection: set_envoy_filter_state envoy.tcp_proxy.cluster = "b", then
 * envoy.network.upstream_server_name; counters wasm_test_fs_cluster and wasm_test_fs_sni add each
 * result code plus one.
 */
const clusterPlugin: PluginSource = {
  strings: {
    setfs: 'set_envoy_filter_state', cluster: filterStateArgs('envoy.tcp_proxy.cluster', 'b'), sni: filterStateArgs('envoy.network.upstream_server_name', 'b.example'),
    mcluster: 'wasm_test_fs_cluster', msni: 'wasm_test_fs_sni',
  },
  imports: ['proxy_call_foreign_function', 'proxy_define_metric', 'proxy_increment_metric'],
  body: `
  (global $mcluster (mut i32) (i32.const 0))
  (global $msni (mut i32) (i32.const 0))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $mcluster$) (i32.const #mcluster#) (i32.const 24)))
    (global.set $mcluster (i32.load (i32.const 24)))
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $msni$) (i32.const #msni#) (i32.const 24)))
    (global.set $msni (i32.load (i32.const 24)))
    (i32.const 1))
  (func (export "proxy_on_new_connection") (param i32) (result i32)
    (drop (call $proxy_increment_metric (global.get $mcluster) (i64.extend_i32_u (i32.add (i32.const 1)
      (call $proxy_call_foreign_function (i32.const $setfs$) (i32.const #setfs#) (i32.const $cluster$) (i32.const #cluster#) (i32.const 16) (i32.const 20))))))
    (drop (call $proxy_increment_metric (global.get $msni) (i64.extend_i32_u (i32.add (i32.const 1)
      (call $proxy_call_foreign_function (i32.const $setfs$) (i32.const #setfs#) (i32.const $sni$) (i32.const #sni#) (i32.const 16) (i32.const 20))))))
    (i32.const 0))`,
};

/** Request headers: set_envoy_filter_state envoy.network.application_protocols = "istio-x,http/1.1". */
const alpnPlugin: PluginSource = {
  strings: { setfs: 'set_envoy_filter_state', alpn: filterStateArgs('envoy.network.application_protocols', 'istio-x,http/1.1') },
  imports: ['proxy_call_foreign_function'],
  body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_call_foreign_function (i32.const $setfs$) (i32.const #setfs#) (i32.const $alpn$) (i32.const #alpn#) (i32.const 16) (i32.const 20)))
    (i32.const 0))`,
};

const address = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
const staticCluster = (name: string, port: number) => ({ name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: address(port) } }] }] } });
const wasmFilter = (kind: 'http' | 'network', name: string, file: string) => ({
  name: `envoy.filters.${kind}.wasm`,
  typed_config: { '@type': `type.googleapis.com/envoy.extensions.filters.${kind}.wasm.v3.Wasm`, config: { name, root_id: name, vm_config: { vm_id: name, code: { local: { filename: file } } } } },
});

test('wasm declare_property: a readonly typed property per request or connection, read by another plugin and CEL', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const dir = tempDir(t, 'wasm-declare-');
  const declare = await writePlugin(dir, 'declare', declarePlugin);
  const reader = await writePlugin(dir, 'reader', readerPlugin);
  const hcm = { '@type': HCM, stat_prefix: 'l', http_filters: [wasmFilter('http', 'declare', declare), wasmFilter('http', 'reader', reader), ROUTER], route_config: { name: 'r', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } };
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: { listeners: [{ name: 'l', address: address(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] }], clusters: [staticCluster('app', app.port)] },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners.l!;

  // Two requests on one connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const seen = async (p: string) => (await request(port, { path: p, agent })).json().headers as Record<string, string>;
  const first = await seen('/one');
  assert.equal(first['x-declare'], '0', 'declared');
  assert.equal(first['x-redeclare'], '2', 'a second declaration: BadArgument');
  assert.equal(first['x-set1'], '0');
  assert.equal(first['x-set2'], '2', 'a readonly property is set once: BadArgument');
  assert.equal(first['x-prop'], 'first', 'read back by a plugin of another VM');
  assert.equal(first['x-cel'], 'first', "CEL's filter_state sees the string property");
  assert.equal(first['x-cel-bytes'], '1', 'and the bytes one as bytes');
  assert.equal(first['x-conn-set'], '0');
  assert.equal(first['x-conn'], '/one');
  const second = await seen('/two');
  assert.equal(second['x-set1'], '0', 'the request property lives as long as its request');
  assert.equal(second['x-prop'], 'first');
  assert.equal(second['x-conn-set'], '2', 'the connection property was set by the first request');
  assert.equal(second['x-conn'], '/one', 'and outlives it');
  assert.equal(app.connections, 1);
});

test('wasm set_envoy_filter_state: a network plugin picks the tcp_proxy cluster; a key rig proxy does not honour answers NotFound', async (t) => {
  const echo = async (tag: string) => {
    const s = net.createServer((c) => {
      c.on('error', () => undefined);
      c.on('data', (d) => c.write(`${tag}:${d}`));
      c.on('end', () => c.end());
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => s.close(() => r())));
    return (s.address() as AddressInfo).port;
  };
  const a = await echo('a');
  const b = await echo('b');
  const dir = tempDir(t, 'wasm-filter-state-');
  const plugin = await writePlugin(dir, 'cluster', clusterPlugin);
  const tcp = { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 't', cluster: 'a' } };
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: { listeners: [{ name: 't', address: address(0), filter_chains: [{ filters: [wasmFilter('network', 'cluster', plugin), tcp] }] }], clusters: [staticCluster('a', a), staticCluster('b', b)] },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);

  const send = () =>
    new Promise<string>((resolve, reject) => {
      const c = net.connect(proxy.ports.listeners.t!, '127.0.0.1', () => c.end('hi'));
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('close', () => resolve(got));
      c.on('error', reject);
    });
  assert.equal(await send(), 'b:hi', 'the plugin chose cluster b over the configured a');
  assert.equal(await send(), 'b:hi');
  const stats = async () => (await request(proxy.ports.admin, { path: '/stats' })).body;
  await waitFor('the counters', async () => ((await stats()).includes('wasmcustom.wasm_test_fs_sni: 4') ? true : undefined));
  const s = await stats();
  assert.match(s, /wasmcustom\.wasm_test_fs_cluster: 2\b/, 'Ok twice');
  assert.match(s, /wasmcustom\.wasm_test_fs_sni: 4\b/, 'NotFound twice');
  assert.equal(proxy.log().match(/set_envoy_filter_state envoy\.network\.upstream_server_name from a network filter: no part of rig proxy reads it/g)?.length, 1, 'warned once');
});

test('wasm set_envoy_filter_state: an HTTP plugin sets the ALPN the TLS upstream is offered', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const backend = pki.leaf('backend', ['DNS:backend.mesh']);
  const offered: string[][] = [];
  const server = https.createServer({ key: backend.key, cert: backend.cert, ALPNCallback: ({ protocols }) => (offered.push(protocols), 'http/1.1') }, (_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const dir = tempDir(t, 'wasm-alpn-');
  const plugin = await writePlugin(dir, 'alpn', alpnPlugin);
  const tls = { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni: 'backend.mesh', common_tls_context: { validation_context: { trusted_ca: { inline_string: pki.ca } } } } };
  const hcm = { '@type': HCM, stat_prefix: 'l', http_filters: [wasmFilter('http', 'alpn', plugin), ROUTER], route_config: { name: 'r', virtual_hosts: [{ name: 'b', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] }] } };
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: {
      listeners: [{ name: 'l', address: address(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] }],
      clusters: [{ ...staticCluster('backend', (server.address() as AddressInfo).port), transport_socket: tls }],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const r = await request(proxy.ports.listeners.l!);
  assert.equal(r.body, 'ok');
  assert.deepEqual(offered, [['istio-x', 'http/1.1']], 'the plugin\'s list, not the default http/1.1');
});
