// Envoy's foreign functions for Wasm plugins in `rig proxy -c`: CEL expressions created once and
// evaluated per request against the stream (RE2 matches() included), an expression that does not
// parse refused with BadArgument, zlib compress/uncompress round-tripping, and a function rig proxy
// does not have answering NotFound with one warning naming it. The plugin is WebAssembly text.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { HCM, request, ROUTER, startUpstream } from './harness.ts';

const EXPR = "request.headers['x-n'] == '1' && request.url_path.matches('^/a/[[:digit:]]+$')";

/**
 * Configure: expr_create(EXPR) → token at 32; expr_create("(") → its result code kept.
 * Request headers: x-expr "1"/"0" from expr_evaluate's one-byte bool; x-bad-expr the code of the
 * bad expression; x-roundtrip the text compressed then uncompressed; x-nosuch the code of "nosuch".
 */
const foreignPlugin: PluginSource = {
  strings: {
    create: 'expr_create', evaluate: 'expr_evaluate', compress: 'compress', uncompress: 'uncompress', nosuch: 'nosuch',
    expr: EXPR, bad: '(', text: 'hello hello hello hello', one: '1', zero: '0', codes: '0123456789',
    hexpr: 'x-expr', hbad: 'x-bad-expr', hround: 'x-roundtrip', hnosuch: 'x-nosuch',
  },
  imports: ['proxy_call_foreign_function', 'proxy_add_header_map_value'],
  body: `
  (global $badCode (mut i32) (i32.const -1))
  (func $digit (param $hp i32) (param $hn i32) (param $code i32)
    (drop (call $proxy_add_header_map_value (i32.const 0) (local.get $hp) (local.get $hn) (i32.add (i32.const $codes$) (local.get $code)) (i32.const 1))))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (if (call $proxy_call_foreign_function (i32.const $create$) (i32.const #create#) (i32.const $expr$) (i32.const #expr#) (i32.const 16) (i32.const 20))
      (then (return (i32.const 0))))
    (i32.store (i32.const 32) (i32.load (i32.load (i32.const 16))))
    (global.set $badCode (call $proxy_call_foreign_function (i32.const $create$) (i32.const #create#) (i32.const $bad$) (i32.const #bad#) (i32.const 16) (i32.const 20)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $p i32) (local $n i32)
    ;; the expression, evaluated against this request
    (if (i32.eqz (call $proxy_call_foreign_function (i32.const $evaluate$) (i32.const #evaluate#) (i32.const 32) (i32.const 4) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $hexpr$) (i32.const #hexpr#)
        (select (i32.const $one$) (i32.const $zero$) (i32.load8_u (i32.load (i32.const 16)))) (i32.const 1)))))
    (call $digit (i32.const $hbad$) (i32.const #hbad#) (global.get $badCode))
    ;; compress, then uncompress what came back
    (drop (call $proxy_call_foreign_function (i32.const $compress$) (i32.const #compress#) (i32.const $text$) (i32.const #text#) (i32.const 16) (i32.const 20)))
    (local.set $p (i32.load (i32.const 16)))
    (local.set $n (i32.load (i32.const 20)))
    (if (i32.eqz (call $proxy_call_foreign_function (i32.const $uncompress$) (i32.const #uncompress#) (local.get $p) (local.get $n) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $hround$) (i32.const #hround#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
    (call $digit (i32.const $hnosuch$) (i32.const #hnosuch#)
      (call $proxy_call_foreign_function (i32.const $nosuch$) (i32.const #nosuch#) (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 20)))
    (i32.const 0))`,
};

test('wasm foreign functions: CEL expressions over the stream, compress/uncompress, NotFound for one rig proxy lacks', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const dir = tempDir(t, 'wasm-foreign-');
  const plugin = await writePlugin(dir, 'foreign', foreignPlugin);
  const wasm = {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
      config: { name: 'foreign', root_id: 'foreign', vm_config: { vm_id: 'foreign', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: plugin } } } },
    },
  };
  const address = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: {
      listeners: [{ name: 'l', address: address(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'l', http_filters: [wasm, ROUTER], route_config: { name: 'r', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } } }] }] }],
      clusters: [{ name: 'app', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: address(app.port) } }] }] } }],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners.l!;

  const seen = async (p: string, headers: Record<string, string> = {}) => (await request(port, { path: p, headers })).json().headers as Record<string, string>;
  const yes = await seen('/a/42?q=1', { 'x-n': '1' });
  assert.equal(yes['x-expr'], '1', 'header and RE2 [[:digit:]] both match');
  assert.equal((await seen('/a/42', { 'x-n': '2' }))['x-expr'], '0');
  assert.equal((await seen('/a/x', { 'x-n': '1' }))['x-expr'], '0');
  assert.equal(yes['x-bad-expr'], '2', 'an expression that does not parse: BadArgument');
  assert.equal(yes['x-roundtrip'], 'hello hello hello hello');
  assert.equal(yes['x-nosuch'], '1', 'a foreign function rig proxy lacks: NotFound');
  assert.equal(proxy.log().match(/foreign function nosuch is not implemented in rig proxy/g)?.length, 1, 'warned once');
});
