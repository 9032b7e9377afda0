// Bytes that are not UTF-8 pass through a Wasm plugin's host calls unchanged, as in Envoy: a local
// reply's body and header values (proxy_send_local_response) reach the client byte for byte, and a
// property set with proxy_set_property without a declaration is kept as bytes, read back by a plugin
// of another VM (proxy_get_property) and by CEL's filter_state.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { HCM, ROUTER, startUpstream } from './harness.ts';

/** Not UTF-8: a lone continuation byte, a truncated sequence, 0xff. */
const BODY = Buffer.from([0x62, 0x80, 0xff, 0x00, 0xc3, 0x28, 0xfe]);
const HEADER_VALUE = Buffer.from([0x61, 0xe9, 0xff, 0x80]);
const PROPERTY = Buffer.from([0xff, 0x80, 0x61, 0xc3, 0x00]);

/** The ABI's header pairs, of bytes. */
function pairs(list: [string, Buffer][]): Buffer {
  const head = Buffer.alloc(4 + list.length * 8);
  head.writeUInt32LE(list.length, 0);
  const tail: Buffer[] = [];
  list.forEach(([k, v], i) => {
    head.writeUInt32LE(k.length, 4 + i * 8);
    head.writeUInt32LE(v.length, 8 + i * 8);
    tail.push(Buffer.from(k + '\0'), v, Buffer.from([0]));
  });
  return Buffer.concat([head, ...tail]);
}

/** Request headers: a 418 local reply with BODY and header x-bin: HEADER_VALUE. */
const replyPlugin: PluginSource = {
  strings: { body: BODY, headers: pairs([['x-bin', HEADER_VALUE]]) },
  imports: ['proxy_send_local_response'],
  body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_send_local_response (i32.const 418) (i32.const 0) (i32.const 0) (i32.const $body$) (i32.const #body#) (i32.const $headers$) (i32.const #headers#) (i32.const -1)))
    (i32.const 1))`,
};

/** Request headers: sets the undeclared property blob to PROPERTY. */
const setterPlugin: PluginSource = {
  strings: { name: 'blob', value: PROPERTY },
  imports: ['proxy_set_property'],
  body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_set_property (i32.const $name$) (i32.const #name#) (i32.const $value$) (i32.const #value#)))
    (i32.const 0))`,
};

/**
 * Request headers: a 200 local reply whose body is the property blob read back, with header x-cel: 1
 * when CEL's filter_state['wasm.blob'] equals PROPERTY as bytes (0 when not, absent when it failed).
 */
const readerPlugin: PluginSource = {
  strings: {
    create: 'expr_create', evaluate: 'expr_evaluate', expr: "filter_state['wasm.blob'] == b'\\xff\\x80a\\xc3\\x00'", name: 'blob',
    yes: pairs([['x-cel', Buffer.from('1')]]), no: pairs([['x-cel', Buffer.from('0')]]),
  },
  imports: ['proxy_call_foreign_function', 'proxy_get_property', 'proxy_send_local_response'],
  body: `
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $proxy_call_foreign_function (i32.const $create$) (i32.const #create#) (i32.const $expr$) (i32.const #expr#) (i32.const 16) (i32.const 20)))
    (i32.store (i32.const 32) (i32.load (i32.load (i32.const 16))))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $h i32) (local $hn i32)
    (if (i32.eqz (call $proxy_call_foreign_function (i32.const $evaluate$) (i32.const #evaluate#) (i32.const 32) (i32.const 4) (i32.const 16) (i32.const 20)))
      (then
        (local.set $h (select (i32.const $yes$) (i32.const $no$) (i32.load8_u (i32.load (i32.const 16)))))
        (local.set $hn (i32.const #yes#))))
    (drop (call $proxy_get_property (i32.const $name$) (i32.const #name#) (i32.const 16) (i32.const 20)))
    (drop (call $proxy_send_local_response (i32.const 200) (i32.const 0) (i32.const 0) (i32.load (i32.const 16)) (i32.load (i32.const 20)) (local.get $h) (local.get $hn) (i32.const -1)))
    (i32.const 1))`,
};

/** Request headers: a 200 local reply whose body is the request.path property, NUL, request.host. */
const requestLinePlugin: PluginSource = {
  strings: { path: Buffer.from('request\0path'), host: Buffer.from('request\0host'), nul: Buffer.from([0]) },
  imports: ['proxy_get_property', 'proxy_send_local_response'],
  body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_get_property (i32.const $path$) (i32.const #path#) (i32.const 16) (i32.const 20)))
    (drop (call $proxy_get_property (i32.const $host$) (i32.const #host#) (i32.const 24) (i32.const 28)))
    ;; body = path bytes, 0, host bytes, assembled at 4096
    (memory.copy (i32.const 4096) (i32.load (i32.const 16)) (i32.load (i32.const 20)))
    (i32.store8 (i32.add (i32.const 4096) (i32.load (i32.const 20))) (i32.const 0))
    (memory.copy (i32.add (i32.const 4097) (i32.load (i32.const 20))) (i32.load (i32.const 24)) (i32.load (i32.const 28)))
    (drop (call $proxy_send_local_response (i32.const 200) (i32.const 0) (i32.const 0) (i32.const 4096) (i32.add (i32.add (i32.load (i32.const 20)) (i32.load (i32.const 28))) (i32.const 1)) (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.const 1))`,
};

const address = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
const wasmFilter = (name: string, file: string) => ({
  name: 'envoy.filters.http.wasm',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm', config: { name, root_id: name, vm_config: { vm_id: name, code: { local: { filename: file } } } } },
});

async function proxyWith(t: test.TestContext, plugins: [string, PluginSource][]): Promise<number> {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const dir = tempDir(t, 'wasm-bytes-');
  const filters = [];
  for (const [name, src] of plugins) filters.push(wasmFilter(name, await writePlugin(dir, name, src)));
  const hcm = { '@type': HCM, stat_prefix: 'l', http_filters: [...filters, ROUTER], route_config: { name: 'r', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } };
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: {
      listeners: [{ name: 'l', address: address(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] }],
      clusters: [{ name: 'app', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: address(app.port) } }] }] } }],
    },
  };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  return proxy.ports.listeners.l!;
}

/** One HTTP/1.1 request on a raw socket (its request line and host as bytes): the response's head (latin1) and body bytes. */
function rawGet(port: number, target: Buffer = Buffer.from('/'), host: Buffer = Buffer.from('x')): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const request = Buffer.concat([Buffer.from('GET '), target, Buffer.from(' HTTP/1.1\r\nhost: '), host, Buffer.from('\r\nconnection: close\r\n\r\n')]);
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      resolve({ head: all.subarray(0, end).toString('latin1'), body: all.subarray(end + 4) });
    });
  });
}

function header(head: string, name: string): Buffer | undefined {
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(name + ':'));
  return line === undefined ? undefined : Buffer.from(line.slice(name.length + 1).trim(), 'latin1');
}

test('wasm proxy_send_local_response: a body and header values of bytes that are not UTF-8 go out as they are', async (t) => {
  const port = await proxyWith(t, [['reply', replyPlugin]]);
  const r = await rawGet(port);
  assert.match(r.head, /^HTTP\/1\.1 418 /);
  assert.deepEqual(r.body, BODY);
  assert.equal(header(r.head, 'content-length')?.toString(), String(BODY.length));
  assert.deepEqual(header(r.head, 'x-bin'), HEADER_VALUE);
});

test('wasm proxy_set_property: an undeclared property is kept as bytes, for another VM and for CEL', async (t) => {
  const port = await proxyWith(t, [['setter', setterPlugin], ['reader', readerPlugin]]);
  const r = await rawGet(port);
  assert.match(r.head, /^HTTP\/1\.1 200 /);
  assert.deepEqual(r.body, PROPERTY, 'read back by a plugin of another VM');
  assert.equal(header(r.head, 'x-cel')?.toString(), '1', "CEL's filter_state sees bytes");
});

test('wasm request.path and request.host properties are the bytes of the request (obs-text too), as Envoy hands them over', async (t) => {
  const port = await proxyWith(t, [['line', requestLinePlugin]]);
  const target = Buffer.from([0x2f, 0x63, 0x61, 0x66, 0xe9, 0x3f, 0x71, 0x3d, 0xff]); // "/caf\xe9?q=\xff"
  const host = Buffer.from([0x68, 0xf6, 0x73, 0x74]); // "h\xf6st"
  const r = await rawGet(port, target, host);
  assert.match(r.head, /^HTTP\/1\.1 200 /);
  assert.deepEqual(r.body, Buffer.concat([target, Buffer.from([0]), host]));
});
