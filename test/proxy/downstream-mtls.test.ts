// Mutual TLS on a listener as Envoy does it: a client without a certificate where one is required
// is refused inside the handshake with the alert BoringSSL sends (TLS 1.3 certificate_required, TLS
// 1.2 handshake_failure), which curl and openssl s_client report; untrusted chains and SAN
// mismatches are refused after it; require_client_certificate false and trust_chain_verification
// ACCEPT_UNTRUSTED accept what Envoy accepts; listener.<prefix>.ssl.* count each case as Envoy's.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import https from 'node:https';
import type tls from 'node:tls';
import { test } from 'node:test';
import { addr, configure, startTestRuntime, SECRET_TYPE, HCM, ROUTER, type Harness } from './harness.ts';
import { makePki, sdsSecrets, type Leaf, type TestPki } from './certs.ts';
import { waitFor } from '../helpers/wait.ts';

const SDS = (name: string) => ({ name, sds_config: { ads: {} } });
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';

function downstreamTls(opts: { require: boolean; trust?: string }): Record<string, unknown> {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: opts.require,
      common_tls_context: {
        alpn_protocols: ['http/1.1'],
        tls_certificate_sds_secret_configs: [SDS('default')],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }], ...(opts.trust ? { trust_chain_verification: opts.trust } : {}) },
          validation_context_sds_secret_config: SDS('ROOTCA'),
        },
      },
    },
  };
}

function listener(name: string, transport: Record<string, unknown>): Record<string, unknown> {
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, route_config: { name, virtual_hosts: [{ name, domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: `${name} ok` } } }] }] }, http_filters: [ROUTER] } };
  return { name, stat_prefix: name, address: addr(0), filter_chains: [{ transport_socket: transport, filters: [hcm] }] };
}

/** listener.<name>.ssl.* without the prefix, but for the per-handshake dimensions (ciphers.*, versions.*, ...). */
function ssl(h: Harness, name: string): Record<string, number> {
  const prefix = `listener.${name}.ssl.`;
  return Object.fromEntries(h.rt.stats.all().filter((s) => s.name.startsWith(prefix) && !s.name.includes('.', prefix.length)).map((s) => [s.name.slice(prefix.length), s.value]));
}

function sslWhen(h: Harness, name: string, expected: Record<string, number>): Promise<Record<string, number>> {
  return waitFor(`listener.${name}.ssl.* to be ${JSON.stringify(expected)} (now ${JSON.stringify(ssl(h, name))})`, () => {
    const s = ssl(h, name);
    return Object.entries(expected).every(([k, v]) => s[k] === v) ? s : undefined;
  }, { timeoutMs: 10_000, intervalMs: 20 });
}

function run(cmd: string, args: string[], input = ''): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
    child.stdin?.end(input);
  });
}

function get(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', servername: 'svc.mesh', agent: false, ...(opts as https.RequestOptions) }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Setup {
  h: Harness;
  pki: TestPki;
  client: Leaf;
  stranger: Leaf;
  foreign: Leaf;
  files: { ca: string; cert: string; key: string };
}

async function setup(t: { after(fn: () => unknown): void }, listeners: Record<string, unknown>[]): Promise<Setup> {
  const pki = makePki();
  const other = makePki('Other CA');
  const h = await startTestRuntime(t);
  t.after(() => {
    pki.cleanup();
    other.cleanup();
  });
  const server = pki.leaf('server', ['URI:spiffe://cluster.local/ns/default/sa/server', 'DNS:svc.mesh']);
  const client = pki.leaf('client', [`URI:${CLIENT_ID}`]);
  const stranger = pki.leaf('stranger', ['URI:spiffe://evil.local/ns/x/sa/y']);
  const foreign = other.leaf('foreign', [`URI:${CLIENT_ID}`]);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(server, pki.ca)), []);
  await configure(h, { listeners });
  return { h, pki, client, stranger, foreign, files: { ca: path.join(pki.dir, 'ca.crt'), cert: path.join(pki.dir, 'client.crt'), key: path.join(pki.dir, 'client.key') } };
}

test('require_client_certificate: no certificate is refused in the handshake with the TLS alert; curl and openssl s_client show it', async (t) => {
  const { h, pki, client, stranger, foreign, files } = await setup(t, [listener('mtls', downstreamTls({ require: true }))]);
  const port = h.port('mtls');

  // TLS 1.3: certificate_required (116), as BoringSSL sends it for Envoy.
  const curl13 = await run('curl', ['-sS', '--cacert', files.ca, '--resolve', `svc.mesh:${port}:127.0.0.1`, `https://svc.mesh:${port}/`]);
  assert.notEqual(curl13.code, 0);
  assert.match(curl13.out, /tlsv13 alert certificate required/);
  // TLS 1.2: handshake_failure (40).
  const curl12 = await run('curl', ['-sS', '--tls-max', '1.2', '--cacert', files.ca, '--resolve', `svc.mesh:${port}:127.0.0.1`, `https://svc.mesh:${port}/`]);
  assert.notEqual(curl12.code, 0);
  assert.match(curl12.out, /alert handshake failure/);
  const sclient = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'svc.mesh', '-CAfile', files.ca, '-tls1_3', '-ign_eof'], 'GET / HTTP/1.1\r\nhost: svc.mesh\r\n\r\n');
  assert.match(sclient.out, /tlsv13 alert certificate required/);
  await sslWhen(h, 'mtls', { fail_verify_no_cert: 3, connection_error: 0, handshake: 0 });

  // With the certificate: served (curl and node).
  const ok = await run('curl', ['-sS', '--cacert', files.ca, '--cert', files.cert, '--key', files.key, '--resolve', `svc.mesh:${port}:127.0.0.1`, `https://svc.mesh:${port}/`]);
  assert.equal(ok.out, 'mtls ok');
  assert.equal(await get(port, { ca: pki.ca, cert: client.cert, key: client.key }), 'mtls ok');
  await sslWhen(h, 'mtls', { handshake: 2, no_certificate: 0 });

  // A chain the trust bundle does not verify, and a SAN outside the matcher: refused after the handshake.
  await assert.rejects(get(port, { ca: pki.ca, cert: foreign.cert, key: foreign.key }));
  await assert.rejects(get(port, { ca: pki.ca, cert: stranger.cert, key: stranger.key }));
  await sslWhen(h, 'mtls', { fail_verify_error: 1, fail_verify_san: 1, handshake: 2, fail_verify_no_cert: 3, connection_error: 0 });

  // A handshake OpenSSL fails otherwise (no common protocol version): connection_error.
  await assert.rejects(get(port, { ca: pki.ca, cert: client.cert, key: client.key, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));
  await sslWhen(h, 'mtls', { connection_error: 1 });
  assert.deepEqual(ssl(h, 'mtls'), { connection_error: 1, fail_verify_error: 1, fail_verify_no_cert: 3, fail_verify_san: 1, handshake: 2, no_certificate: 0, session_reused: 0 });
});

test('require_client_certificate false: no certificate is served (no_certificate); a presented one is still verified', async (t) => {
  const { h, pki, client, stranger, foreign } = await setup(t, [listener('optional', downstreamTls({ require: false }))]);
  const port = h.port('optional');
  assert.equal(await get(port, { ca: pki.ca }), 'optional ok');
  assert.equal(await get(port, { ca: pki.ca, cert: client.cert, key: client.key }), 'optional ok');
  await assert.rejects(get(port, { ca: pki.ca, cert: foreign.cert, key: foreign.key }));
  await assert.rejects(get(port, { ca: pki.ca, cert: stranger.cert, key: stranger.key }));
  await sslWhen(h, 'optional', { handshake: 2, no_certificate: 1, fail_verify_error: 1, fail_verify_san: 1, fail_verify_no_cert: 0 });
});

test('trust_chain_verification ACCEPT_UNTRUSTED: an untrusted chain or a SAN mismatch is counted and served; no certificate is still refused', async (t) => {
  const { h, pki, client, stranger, foreign, files } = await setup(t, [listener('untrusted', downstreamTls({ require: true, trust: 'ACCEPT_UNTRUSTED' }))]);
  const port = h.port('untrusted');
  assert.equal(await get(port, { ca: pki.ca, cert: foreign.cert, key: foreign.key }), 'untrusted ok');
  assert.equal(await get(port, { ca: pki.ca, cert: stranger.cert, key: stranger.key }), 'untrusted ok');
  assert.equal(await get(port, { ca: pki.ca, cert: client.cert, key: client.key }), 'untrusted ok');
  const none = await run('curl', ['-sS', '--cacert', files.ca, '--resolve', `svc.mesh:${port}:127.0.0.1`, `https://svc.mesh:${port}/`]);
  assert.match(none.out, /tlsv13 alert certificate required/);
  await sslWhen(h, 'untrusted', { handshake: 3, fail_verify_error: 1, fail_verify_san: 1, fail_verify_no_cert: 1 });
});
