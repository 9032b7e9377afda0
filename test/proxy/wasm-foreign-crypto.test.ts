// Envoy's sign and verify_signature foreign functions in a `rig proxy -c` process, with keys and
// signatures made here by node:crypto: an RSA signature over DER keys verifies and a changed text
// does not; an ECDSA one over a PEM key verifies; an unknown hash is not verified; a DER and a PEM
// key at once is BadArgument; signing with a PKCS#8 RSA key gives exactly the PKCS#1 v1.5
// signature (deterministic) in a SignResult, and an unknown hash a SignResult without one.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { HCM, request, ROUTER, startUpstream } from './harness.ts';

/** VerifySignatureArguments { hash_function = 1; public_key = 2; signature = 3; text = 4; public_key_pem = 5 }. */
function verifyArgs(a: { hash: string; der?: Buffer; pem?: string; signature: Buffer; text: string }): Buffer {
  const w = protobuf.Writer.create().uint32(10).string(a.hash);
  if (a.der) w.uint32(18).bytes(a.der);
  w.uint32(26).bytes(a.signature).uint32(34).string(a.text);
  if (a.pem) w.uint32(42).string(a.pem);
  return Buffer.from(w.finish());
}

/** SignArguments { hash_function = 1; private_key = 2; text = 3; private_key_pem = 4 }. */
function signArgs(hash: string, der: Buffer, text: string): Buffer {
  return Buffer.from(protobuf.Writer.create().uint32(10).string(hash).uint32(18).bytes(der).uint32(26).string(text).finish());
}

/** SignResult { result = 1; signature = 2; error = 3 }, as Envoy serializes a successful one. */
function signResult(signature: Buffer): Buffer {
  return Buffer.from(protobuf.Writer.create().uint32(8).bool(true).uint32(18).bytes(signature).finish());
}

const TEXT = 'hello world';

function plugin(): PluginSource {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaDer = rsa.publicKey.export({ format: 'der', type: 'spki' });
  const rsaSig = crypto.sign('sha256', Buffer.from(TEXT), rsa.privateKey);
  const ecPem = ec.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  const privDer = rsa.privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    strings: {
      verify: 'verify_signature', sign: 'sign', codes: '0123456789', yes: 'y', no: 'n',
      good: verifyArgs({ hash: 'SHA256', der: rsaDer, signature: rsaSig, text: TEXT }),
      changed: verifyArgs({ hash: 'sha256', der: rsaDer, signature: rsaSig, text: TEXT + '!' }),
      ec: verifyArgs({ hash: 'sha384', pem: ecPem, signature: crypto.sign('sha384', Buffer.from(TEXT), ec.privateKey), text: TEXT }),
      md5: verifyArgs({ hash: 'md5', der: rsaDer, signature: rsaSig, text: TEXT }),
      twoKeys: verifyArgs({ hash: 'sha256', der: rsaDer, pem: ecPem, signature: rsaSig, text: TEXT }),
      signed: signArgs('sha256', privDer, TEXT),
      signedMd5: signArgs('md5', privDer, TEXT),
      expected: signResult(rsaSig),
      hgood: 'x-good', hchanged: 'x-changed', hec: 'x-ec', hmd5: 'x-md5', htwo: 'x-two-keys', hsign: 'x-sign', hsignmd5: 'x-sign-md5',
    },
    imports: ['proxy_call_foreign_function', 'proxy_add_header_map_value'],
    body: `
  ;; Header hp: the result code's digit when not Ok, else y when the result message begins with
  ;; field 1 = true (08 01) and, given an expected message (ep, en), is exactly it; else n.
  (func $check (param $hp i32) (param $hn i32) (param $fp i32) (param $fn i32) (param $ap i32) (param $an i32) (param $ep i32) (param $en i32)
    (local $code i32) (local $c i32) (local $p i32) (local $n i32) (local $i i32) (local $ok i32)
    (local.set $code (call $proxy_call_foreign_function (local.get $fp) (local.get $fn) (local.get $ap) (local.get $an) (i32.const 16) (i32.const 20)))
    (local.set $p (i32.load (i32.const 16)))
    (local.set $n (i32.load (i32.const 20)))
    (local.set $ok (i32.and (i32.ge_u (local.get $n) (i32.const 2)) (i32.eq (i32.load16_u (local.get $p)) (i32.const 0x0108))))
    (if (local.get $en) (then
      (if (i32.ne (local.get $n) (local.get $en)) (then (local.set $ok (i32.const 0))))
      (block $done (loop $next
        (br_if $done (i32.or (i32.eqz (local.get $ok)) (i32.ge_u (local.get $i) (local.get $en))))
        (if (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.load8_u (i32.add (local.get $ep) (local.get $i))))
          (then (local.set $ok (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))))
    (local.set $c (select (select (i32.const $yes$) (i32.const $no$) (local.get $ok)) (i32.add (i32.const $codes$) (local.get $code)) (i32.eqz (local.get $code))))
    (drop (call $proxy_add_header_map_value (i32.const 0) (local.get $hp) (local.get $hn) (local.get $c) (i32.const 1))))
  (func $verify (param $hp i32) (param $hn i32) (param $ap i32) (param $an i32)
    (call $check (local.get $hp) (local.get $hn) (i32.const $verify$) (i32.const #verify#) (local.get $ap) (local.get $an) (i32.const 0) (i32.const 0)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $verify (i32.const $hgood$) (i32.const #hgood#) (i32.const $good$) (i32.const #good#))
    (call $verify (i32.const $hchanged$) (i32.const #hchanged#) (i32.const $changed$) (i32.const #changed#))
    (call $verify (i32.const $hec$) (i32.const #hec#) (i32.const $ec$) (i32.const #ec#))
    (call $verify (i32.const $hmd5$) (i32.const #hmd5#) (i32.const $md5$) (i32.const #md5#))
    (call $verify (i32.const $htwo$) (i32.const #htwo#) (i32.const $twoKeys$) (i32.const #twoKeys#))
    (call $check (i32.const $hsign$) (i32.const #hsign#) (i32.const $sign$) (i32.const #sign#) (i32.const $signed$) (i32.const #signed#) (i32.const $expected$) (i32.const #expected#))
    (call $check (i32.const $hsignmd5$) (i32.const #hsignmd5#) (i32.const $sign$) (i32.const #sign#) (i32.const $signedMd5$) (i32.const #signedMd5#) (i32.const 0) (i32.const 0))
    (i32.const 0))`,
  };
}

test('wasm sign / verify_signature: RSA and ECDSA over DER and PEM keys, as Envoy', async (t) => {
  const app = await startUpstream('app');
  t.after(() => app.close());
  const dir = tempDir(t, 'wasm-crypto-');
  const file = await writePlugin(dir, 'crypto', plugin());
  const address = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
  const wasm = { name: 'envoy.filters.http.wasm', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm', config: { name: 'crypto', vm_config: { vm_id: 'crypto', code: { local: { filename: file } } } } } };
  const hcm = { '@type': HCM, stat_prefix: 'l', http_filters: [wasm, ROUTER], route_config: { name: 'r', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] } };
  const bootstrap = {
    admin: { address: address(0) },
    static_resources: {
      listeners: [{ name: 'l', address: address(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] }],
      clusters: [{ name: 'app', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: address(app.port) } }] }] } }],
    },
  };
  const config = path.join(dir, 'envoy.json');
  fs.writeFileSync(config, JSON.stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, config);

  const h = (await request(proxy.ports.listeners.l!)).json().headers as Record<string, string>;
  assert.equal(h['x-good'], 'y', 'an RSA PKCS#1 v1.5 signature over a DER key (hash name in any case)');
  assert.equal(h['x-changed'], 'n', 'another text: not verified');
  assert.equal(h['x-ec'], 'y', 'an ECDSA signature over a PEM key');
  assert.equal(h['x-md5'], 'n', 'an unknown hash: not verified');
  assert.equal(h['x-two-keys'], '2', 'a DER and a PEM key: BadArgument');
  assert.equal(h['x-sign'], 'y', 'the signature node:crypto makes, in a SignResult');
  assert.equal(h['x-sign-md5'], 'n', 'an unknown hash: no signature');
});
