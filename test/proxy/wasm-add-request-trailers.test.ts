// Trailers a Wasm plugin adds from its last proxy_on_request_body call to a request that came without
// any (Envoy's addDecodedTrailers), in a `rig proxy -c` process: an HTTP/2 request's go to an HTTP/2
// upstream and, chunked, to an HTTP/1.1 one with enable_trailers; a chunked HTTP/1.1 request's (the
// connection manager's enable_trailers) too. A request of fixed length over HTTP/1.1 cannot carry
// them: the edit answers BadArgument, as Envoy for a map it does not have, with one warning. Adding
// trailers to a response (addEncodedTrailers) is not done by rig proxy: BadArgument, one warning.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { trailerUpstreams } from '../helpers/trailer-upstreams.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { HCM, request, ROUTER } from './harness.ts';

/**
 * The last request body call adds trailer x-added: by-wasm; counter wasm_test_add_trailer adds the
 * result code plus one. The last response body call tries the same on the response (counter
 * wasm_test_add_res_trailer), which rig proxy cannot do.
 */
const addTrailerPlugin: PluginSource = {
  strings: { name: 'x-added', value: 'by-wasm', metric: 'wasm_test_add_trailer', resMetric: 'wasm_test_add_res_trailer' },
  imports: ['proxy_add_header_map_value', 'proxy_define_metric', 'proxy_increment_metric'],
  body: `
  (global $m (mut i32) (i32.const 0))
  (global $rm (mut i32) (i32.const 0))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $metric$) (i32.const #metric#) (i32.const 24)))
    (global.set $m (i32.load (i32.const 24)))
    (drop (call $proxy_define_metric (i32.const 0) (i32.const $resMetric$) (i32.const #resMetric#) (i32.const 24)))
    (global.set $rm (i32.load (i32.const 24)))
    (i32.const 1))
  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (local.get $end)
      (then (drop (call $proxy_increment_metric (global.get $rm) (i64.extend_i32_u (i32.add (i32.const 1)
        (call $proxy_add_header_map_value (i32.const 3) (i32.const $name$) (i32.const #name#) (i32.const $value$) (i32.const #value#))))))))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $end i32) (result i32)
    (if (local.get $end)
      (then (drop (call $proxy_increment_metric (global.get $m) (i64.extend_i32_u (i32.add (i32.const 1)
        (call $proxy_add_header_map_value (i32.const 1) (i32.const $name$) (i32.const #name#) (i32.const $value$) (i32.const #value#))))))))
    (i32.const 0))`,
};

/** An HTTP/1.1 POST of "body" on a raw socket, chunked (no trailers) or of fixed length; its status. */
function h1Post(port: number, path: string, chunked: boolean): Promise<number> {
  const framing = chunked ? 'Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n' : 'Content-Length: 4\r\n\r\nbody';
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`POST ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n${framing}`));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

/** An HTTP/2 POST of "body" without trailers; its status. */
function h2Post(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const s = session.request({ ':method': 'POST', ':path': path });
    let status = 0;
    s.on('response', (h) => (status = Number(h[':status'])));
    s.resume();
    s.on('end', () => {
      session.close();
      resolve(status);
    });
    s.on('error', reject);
    s.end('body');
  });
}

const OPTS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const protocol = (http: object) => ({ typed_extension_protocol_options: { [OPTS]: { '@type': `type.googleapis.com/${OPTS}`, explicit_http_config: http } } });
const address = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
const cluster = (name: string, port: number, opts: object) => ({ name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: address(port) } }] }] }, ...opts });

test('wasm: trailers added from the last proxy_on_request_body call go upstream (HTTP/2, chunked HTTP/1.1); BadArgument where the request cannot carry them', async (t) => {
  const ups = await trailerUpstreams(t);
  const dir = tempDir(t, 'wasm-add-trailers-');
  const plugin = await writePlugin(dir, 'add', addTrailerPlugin);
  const wasm = { name: 'envoy.filters.http.wasm', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm', config: { name: 'add', root_id: 'add', vm_config: { vm_id: 'add', code: { local: { filename: plugin } } } } } };
  const routes = { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/h2' }, route: { cluster: 'h2' } }, { match: { prefix: '/' }, route: { cluster: 'h1' } }] }] };
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'l', http_filters: [wasm, ROUTER], route_config: routes, http_protocol_options: { enable_trailers: true } } };
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: {
      listeners: [{ name: 'l', address: address(0), filter_chains: [{ filters: [hcm] }] }],
      clusters: [cluster('h1', ups.h1, protocol({ http_protocol_options: { enable_trailers: true } })), cluster('h2', ups.h2, protocol({ http2_protocol_options: {} }))],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners.l!;
  const counter = async (name = 'wasm_test_add_trailer') => Number(new RegExp(`wasmcustom\\.${name}: (\\d+)`).exec((await request(proxy.ports.admin, { path: '/stats' })).body)?.[1] ?? 0);
  const added = { body: 'body', trailers: { 'x-added': 'by-wasm' } };

  assert.equal(await h2Post(port, '/h2'), 200);
  assert.deepEqual(ups.seen.at(-1), added, 'HTTP/2 to HTTP/2');
  assert.equal(await h2Post(port, '/h1'), 200);
  assert.deepEqual(ups.seen.at(-1), added, 'HTTP/2 to HTTP/1.1 (chunked, enable_trailers)');
  assert.equal(await h1Post(port, '/h2', true), 200);
  assert.deepEqual(ups.seen.at(-1), added, 'chunked HTTP/1.1 to HTTP/2');
  await waitFor('three edits counted', async () => ((await counter()) === 3 ? true : undefined));

  // Of fixed length over HTTP/1.1: no trailers can follow; the request goes on without.
  assert.equal(await h1Post(port, '/h2', false), 200);
  assert.deepEqual(ups.seen.at(-1), { body: 'body', trailers: {} });
  await waitFor('BadArgument counted', async () => ((await counter()) === 3 + 3 ? true : undefined));
  // The log reaches us through the proxy's stdout, possibly after the counter moved.
  const warnings = (re: RegExp) => waitFor(`the warning ${re}`, () => proxy.log().match(re)?.length);
  assert.equal(await warnings(/request trailers added from proxy_on_request_body go upstream only/g), 1, 'warned once');

  // Response trailers cannot be added: BadArgument on each of the four responses, one warning.
  await waitFor('the response edits counted', async () => ((await counter('wasm_test_add_res_trailer')) === 4 * 3 ? true : undefined));
  assert.equal(await warnings(/cannot add trailers to a response that came without/g), 1, 'warned once');
});
