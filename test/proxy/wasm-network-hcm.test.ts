// A network Wasm plugin before http_connection_manager sees the connection's bytes, as Envoy's read
// and write filters before the HCM's codec: proxy_on_downstream_data gets what the client sends
// before the codec parses it (a pause holds it, handed again with the next bytes; a rewrite is what
// the codec reads), proxy_on_upstream_data what the HCM writes (a rewrite is what the client gets),
// over HTTP/1.1 and HTTP/2, in a `rig proxy -c` process.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { HCM, request, ROUTER, startUpstream } from './harness.ts';

/**
 * Client bytes: fewer than 3 are held (Pause); a chunk starting "GE" has its first 3 bytes replaced by
 * "PUT"; counter wasm_test_hcm_down adds each chunk's size. Written bytes: a chunk starting "HT" has
 * bytes 9-11 (an HTTP/1.1 status code) replaced by "299"; counter wasm_test_hcm_up adds each size.
 */
const rewritePlugin: PluginSource = {
  strings: { put: 'PUT', code: '299', down: 'wasm_test_hcm_down', up: 'wasm_test_hcm_up' },
  imports: ['proxy_get_buffer_bytes', 'proxy_set_buffer_bytes', 'proxy_define_metric', 'proxy_increment_metric'],
  body: `
  (global $down (mut i32) (i32.const 0))
  (global $up (mut i32) (i32.const 0))
  (func $startsWith (param $type i32) (param $a i32) (param $b i32) (result i32)
    (drop (call $proxy_get_buffer_bytes (local.get $type) (i32.const 0) (i32.const 2) (i32.const 16) (i32.const 20)))
    (i32.and (i32.eq (i32.load8_u (i32.load (i32.const 16))) (local.get $a)) (i32.eq (i32.load8_u (i32.add (i32.load (i32.const 16)) (i32.const 1))) (local.get $b))))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $down$) (i32.const #down#) (i32.const 24)))
    (global.set $down (i32.load (i32.const 24)))
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $up$) (i32.const #up#) (i32.const 24)))
    (global.set $up (i32.load (i32.const 24)))
    (i32.const 1))
  (func (export "proxy_on_downstream_data") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (drop (call $proxy_increment_metric (global.get $down) (i64.extend_i32_u (local.get $size))))
    (if (i32.lt_u (local.get $size) (i32.const 3)) (then (return (i32.const 1))))
    (if (call $startsWith (i32.const 2) (i32.const 71) (i32.const 69))
      (then (drop (call $proxy_set_buffer_bytes (i32.const 2) (i32.const 0) (i32.const 3) (i32.const $put$) (i32.const #put#)))))
    (i32.const 0))
  (func (export "proxy_on_upstream_data") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (drop (call $proxy_increment_metric (global.get $up) (i64.extend_i32_u (local.get $size))))
    (if (i32.and (i32.ge_u (local.get $size) (i32.const 12)) (call $startsWith (i32.const 3) (i32.const 72) (i32.const 84)))
      (then (drop (call $proxy_set_buffer_bytes (i32.const 3) (i32.const 9) (i32.const 3) (i32.const $code$) (i32.const #code#)))))
    (i32.const 0))`,
};

const address = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });

test('wasm network plugin before http_connection_manager: the bytes the codec reads and writes, HTTP/1.1 and HTTP/2', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const dir = tempDir(t, 'wasm-net-hcm-');
  const plugin = await writePlugin(dir, 'rewrite', rewritePlugin);
  const wasm = { name: 'envoy.filters.network.wasm', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm', config: { name: 'rewrite', root_id: 'rewrite', vm_config: { vm_id: 'rewrite', code: { local: { filename: plugin } } } } } };
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'l', http_filters: [ROUTER], route_config: { name: 'r', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } } };
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: {
      listeners: [{ name: 'l', address: address(0), filter_chains: [{ filters: [wasm, hcm] }] }],
      clusters: [{ name: 'app', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: address(app.port) } }] }] } }],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners.l!;
  const counter = async (name: string) => Number(new RegExp(`wasmcustom\\.${name}: (\\d+)`).exec((await request(proxy.ports.admin, { path: '/stats' })).body)?.[1] ?? 0);

  // HTTP/1.1: "GE" alone is held, then read again with the rest; the codec reads PUT.
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', async () => {
      s.write('GE');
      await sleep(100);
      s.write('T /one HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
  const text = raw.toString('latin1');
  assert.match(text, /^HTTP\/1\.1 299 /, 'the status line the HCM wrote, rewritten by the plugin');
  // The echo's JSON, inside its chunked framing.
  const echo = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as { method: string; url: string };
  assert.equal(echo.method, 'PUT', 'the codec read the rewritten request line');
  assert.equal(echo.url, '/one');
  await waitFor('the written bytes counted', async () => ((await counter('wasm_test_hcm_up')) === raw.length ? true : undefined));

  // HTTP/2 (prior knowledge) through the same filters: its frames pass, counted both ways.
  const downBefore = await counter('wasm_test_hcm_down');
  const upBefore = await counter('wasm_test_hcm_up');
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());
  const body = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ':path': '/two' });
    let b = '';
    req.setEncoding('utf8');
    req.on('response', (h) => (h[':status'] === 200 ? undefined : reject(new Error(`status ${String(h[':status'])}`))));
    req.on('data', (c: string) => (b += c));
    req.on('end', () => resolve(b));
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual((JSON.parse(body) as { method: string; url: string }).url, '/two');
  session.close();
  await waitFor('the HTTP/2 bytes counted', async () => ((await counter('wasm_test_hcm_down')) > downBefore && (await counter('wasm_test_hcm_up')) > upBefore ? true : undefined));
  assert.doesNotMatch(proxy.log(), /run only in a chain ending in tcp_proxy/);
});
