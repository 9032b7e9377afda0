// A downstream TLS handshake that fails on a `rig proxy -c bootstrap.yaml` listener requiring a
// client certificate, as Envoy reports it: the listener's access_log has one line for the
// connection with %DOWNSTREAM_TRANSPORT_FAILURE_REASON% (Envoy's "TLS_error:|...:TLS_error_end")
// naming the failure, a CEL filter sees it as connection.transport_failure_reason, and the
// listener's ssl.* stats on the admin port count it; a good client's connection has "-" there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { FILE_ACCESS_LOG_TYPE, HCM_TYPE } from '../../src/envoy/index.ts';
import { compileLogFormat } from '../../src/proxy/access-log/access-log-format.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { makePki, type Leaf } from './certs.ts';

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const CEL_FILTER = 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';

function textLog(file: string, filter?: Record<string, unknown>) {
  const log_format = { text_format_source: { inline_string: '%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_TRANSPORT_FAILURE_REASON%\n' } };
  return { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: file, log_format }, ...(filter ? { filter } : {}) };
}

/** Connects with TLS (or plaintext `bytes`), sends a request, and resolves with the client's port and what it got once the connection closed. */
function client(port: number, opts: { ca: string; leaf?: Leaf } | { bytes: string }): Promise<{ port: number; got: string }> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, '127.0.0.1');
    raw.once('error', reject);
    raw.once('connect', () => {
      raw.off('error', reject);
      raw.on('error', () => undefined);
      const local = raw.localPort!;
      let got = '';
      const s = 'bytes' in opts ? raw : tls.connect({ socket: raw, servername: 'svc.mesh', ca: opts.ca, cert: opts.leaf?.cert, key: opts.leaf?.key });
      s.on('error', () => raw.destroy());
      s.on('data', (d: Buffer) => (got += d.toString()));
      raw.once('close', () => resolve({ port: local, got }));
      s.write('bytes' in opts ? opts.bytes : 'GET / HTTP/1.1\r\nhost: svc.mesh\r\nconnection: close\r\n\r\n');
    });
  });
}

function lines(file: string, n: number): Promise<string[]> {
  return waitFor(`${n} line(s) in ${path.basename(file)}`, () => {
    const all = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    return all.length >= n ? all : undefined;
  });
}

async function sslStats(adminPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).text();
  const prefix = 'listener.mtls.ssl.';
  return Object.fromEntries(text.split('\n').filter((l) => l.startsWith(prefix) && !l.includes('.', prefix.length)).map((l) => {
    const [name, value] = l.slice(prefix.length).split(': ');
    return [name, Number(value)];
  }));
}

test('listener TLS failures: one access log line each with %DOWNSTREAM_TRANSPORT_FAILURE_REASON%, counted in listener ssl stats; a good client has "-"', async (t) => {
  const dir = tempDir(t, 'rig-listener-tls-');
  const pki = makePki();
  const other = makePki('Other CA');
  t.after(() => {
    pki.cleanup();
    other.cleanup();
  });
  const server = pki.leaf('server', ['DNS:svc.mesh']);
  const good = pki.leaf('client', [`URI:${CLIENT_ID}`]);
  const stranger = pki.leaf('stranger', ['URI:spiffe://evil.local/ns/x/sa/y']);
  const foreign = other.leaf('foreign', [`URI:${CLIENT_ID}`]);
  const expired = pki.leaf('expired', [`URI:${CLIENT_ID}`], -1);
  const all = path.join(dir, 'all.log');
  const failures = path.join(dir, 'failures.log');
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM_TYPE, stat_prefix: 'mtls', http_filters: [ROUTER], route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }] } } };
  const transport = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: true,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { inline_string: server.cert }, private_key: { inline_string: server.key } }],
        validation_context: { trusted_ca: { inline_string: pki.ca }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }] },
      },
    },
  };
  const bootstrap = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: 'mtls',
        stat_prefix: 'mtls',
        address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
        filter_chains: [{ transport_socket: transport, filters: [hcm] }],
        access_log: [textLog(all), textLog(failures, { extension_filter: { name: 'cel', typed_config: { '@type': CEL_FILTER, expression: "connection.transport_failure_reason != ''" } } })],
      }],
    },
  };
  const file = path.join(dir, 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners.mtls;
  const logged = (n: number) => lines(all, n).then((ls) => ls[n - 1]);

  // The mesh client: served; its connection's line has "-".
  const ok = await client(port, { ca: pki.ca, leaf: good });
  assert.match(ok.got, /^HTTP\/1\.1 200/);
  assert.equal(await logged(1), `127.0.0.1:${ok.port} -`);

  // No client certificate: OpenSSL refuses it in the handshake (BoringSSL's reason name).
  const none = await client(port, { ca: pki.ca });
  assert.equal(none.got, '');
  assert.equal(await logged(2), `127.0.0.1:${none.port} TLS_error:|SSL routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE:TLS_error_end`);

  // A certificate from another CA, an expired one: Envoy's validator's CERTIFICATE_VERIFY_FAILED with OpenSSL's verification error.
  const untrusted = await client(port, { ca: pki.ca, leaf: foreign });
  assert.equal(untrusted.got, '');
  assert.equal(await logged(3), `127.0.0.1:${untrusted.port} TLS_error:|SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: unable to verify the first certificate:TLS_error_end`);

  const late = await client(port, { ca: pki.ca, leaf: expired });
  assert.equal(late.got, '');
  assert.equal(await logged(4), `127.0.0.1:${late.port} TLS_error:|SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: certificate has expired:TLS_error_end`);

  // Trusted, but its SAN matches no matcher.
  const badSan = await client(port, { ca: pki.ca, leaf: stranger });
  assert.equal(badSan.got, '');
  assert.equal(await logged(5), `127.0.0.1:${badSan.port} TLS_error:|SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher:TLS_error_end`);

  // Plaintext HTTP on the TLS-only chain.
  const plain = await client(port, { bytes: 'GET / HTTP/1.1\r\nhost: svc.mesh\r\n\r\n' });
  assert.equal(await logged(6), `127.0.0.1:${plain.port} TLS_error:|SSL routines:OPENSSL_internal:HTTP_REQUEST:TLS_error_end`);

  // The CEL-filtered log has the failures only.
  assert.deepEqual((await lines(failures, 5)).map((l) => Number(l.split(' ')[0].split(':')[1])), [none.port, untrusted.port, late.port, badSan.port, plain.port]);
  assert.equal((await lines(all, 6)).length, 6, 'one line per connection');

  const stats = await sslStats(proxy.ports.admin);
  assert.deepEqual(
    { handshake: stats.handshake, fail_verify_no_cert: stats.fail_verify_no_cert, fail_verify_error: stats.fail_verify_error, fail_verify_san: stats.fail_verify_san, connection_error: stats.connection_error },
    { handshake: 1, fail_verify_no_cert: 1, fail_verify_error: 2, fail_verify_san: 1, connection_error: 1 },
  );
});

test('%DOWNSTREAM_TRANSPORT_FAILURE_REASON% is a command; a command Envoy does not have is still a config error', () => {
  const errors: string[] = [];
  compileLogFormat('%DOWNSTREAM_TRANSPORT_FAILURE_REASON% %DOWNSTREAM_TRANSPORT_FAILURE%\n', (m) => errors.push(m));
  assert.deepEqual(errors, ['unsupported access log command %DOWNSTREAM_TRANSPORT_FAILURE%']);
});
