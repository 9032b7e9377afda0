// Envoy's per-handshake TLS dimension counters on both sides, as BoringSSL names them for Envoy:
// listener.<address>.ssl.{ciphers,versions,curves,sigalgs}.<name> for the connections a listener
// accepts (curl as the client, its TLS version, cipher and curve pinned) and
// cluster.<name>.ssl.* for the connections a cluster makes (tls_params pinned, cross-checked with
// what the upstream server saw, and an RSA server's signature with openssl s_client's trace); counted once per handshake (keep-alive requests add nothing); in
// /stats/prometheus with Envoy's default tags (envoy_ssl_cipher, cipher_suite, envoy_ssl_version,
// envoy_ssl_curve, envoy_ssl_sigalg).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { test } from 'node:test';
import { createAdminHandler } from '../../src/proxy/admin/admin-server.ts';
import { LogLevels } from '../../src/proxy/admin/logging.ts';
import { silentLogger } from '../../src/core/log.ts';
import { addr, configure, httpListener, request, routeConfig, startTestRuntime, staticCluster, SECRET_TYPE, HCM, ROUTER, type Harness } from './harness.ts';
import { makePki, sdsSecrets } from './certs.ts';
import { waitFor } from '../helpers/wait.ts';

const SDS = (name: string) => ({ name, sds_config: { ads: {} } });
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** <prefix>ssl.{ciphers,versions,curves,sigalgs}.* without the prefix. */
function dimensions(h: Harness, prefix: string): Record<string, number> {
  const p = `${prefix}ssl.`;
  return Object.fromEntries(
    h.rt.stats
      .all()
      .filter((s) => s.name.startsWith(p) && /^(ciphers|versions|curves|sigalgs)\./.test(s.name.slice(p.length)))
      .map((s) => [s.name.slice(p.length), s.value])
      .sort(([a], [b]) => String(a).localeCompare(String(b))),
  );
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
    child.stdin?.end();
  });
}

async function adminPort(t: { after(fn: () => unknown): void }, h: Harness): Promise<number> {
  const admin = http.createServer(createAdminHandler({ runtime: h.rt, bootstrap: {}, commandLine: [], onQuit: () => undefined, logLevels: new LogLevels(silentLogger.child({})) }));
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => admin.close(() => r())));
  return (admin.address() as AddressInfo).port;
}

test('listener.<address>.ssl.{ciphers,versions,curves,sigalgs}: one per accepted handshake, named as Envoy; in /stats/prometheus with Envoy tags', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const server = pki.leaf('server', ['DNS:svc.mesh']);
  pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/client']);
  const h = await startTestRuntime(t);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(server, pki.ca)), []);
  const transport = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      common_tls_context: { alpn_protocols: ['http/1.1'], tls_certificate_sds_secret_configs: [SDS('default')], validation_context_sds_secret_config: SDS('ROOTCA') },
    },
  };
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: 'in', route_config: { name: 'in', virtual_hosts: [{ name: 'in', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }] }, http_filters: [ROUTER] } };
  // No stat_prefix: the listener's stats are named by its configured address, listener.127.0.0.1_0.
  await configure(h, { listeners: [{ name: 'in', address: addr(0), filter_chains: [{ transport_socket: transport, filters: [hcm] }] }] });
  const port = h.port('in');
  const base = ['-sS', '--cacert', path.join(pki.dir, 'ca.crt'), '--resolve', `svc.mesh:${port}:127.0.0.1`];
  const cert = ['--cert', path.join(pki.dir, 'client.crt'), '--key', path.join(pki.dir, 'client.key')];
  const url = `https://svc.mesh:${port}/`;
  // TLS 1.2, P-256, with a client certificate (ECDSA P-256: it signs ecdsa_secp256r1_sha256); two requests on one connection.
  const r12 = await run('curl', [...base, ...cert, '-v', '--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256', '--curves', 'P-256', url, url]);
  assert.equal(r12.code, 0, r12.out);
  assert.match(r12.out, /SSL connection using TLSv1\.2 \/ ECDHE-ECDSA-AES128-GCM-SHA256/);
  // TLS 1.3, X25519, with and without a client certificate (none: no signature, no sigalg).
  const r13 = await run('curl', [...base, ...cert, '-v', '--tlsv1.3', '--tls13-ciphers', 'TLS_AES_128_GCM_SHA256', '--curves', 'X25519', url]);
  assert.equal(r13.code, 0, r13.out);
  assert.match(r13.out, /SSL connection using TLSv1\.3 \/ TLS_AES_128_GCM_SHA256/);
  const anon = await run('curl', [...base, '--tlsv1.3', '--tls13-ciphers', 'TLS_CHACHA20_POLY1305_SHA256', '--curves', 'P-384', url]);
  assert.equal(anon.out, 'ok');
  const prefix = 'listener.127.0.0.1_0.';
  const expected = {
    'ciphers.ECDHE-ECDSA-AES128-GCM-SHA256': 1,
    'ciphers.TLS_AES_128_GCM_SHA256': 1,
    'ciphers.TLS_CHACHA20_POLY1305_SHA256': 1,
    'curves.P-256': 1,
    'curves.P-384': 1,
    'curves.X25519': 1,
    'sigalgs.ecdsa_secp256r1_sha256': 2,
    'versions.TLSv1.2': 1,
    'versions.TLSv1.3': 2,
  };
  await waitFor(`${prefix}ssl.* dimensions (now ${JSON.stringify(dimensions(h, prefix))})`, () => (h.rt.stats.all().find((s) => s.name === `${prefix}ssl.handshake`)?.value === 3 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  assert.deepEqual(dimensions(h, prefix), expected);

  const prom = (await request(await adminPort(t, h), { path: '/stats/prometheus' })).body;
  const lines = prom.split('\n').filter((l) => /^envoy_listener_ssl_(ciphers|versions|curves|sigalgs)\{/.test(l));
  const address = 'envoy_listener_address="127.0.0.1_0"';
  for (const line of [
    `envoy_listener_ssl_ciphers{${address},envoy_ssl_cipher="ECDHE-ECDSA-AES128-GCM-SHA256"} 1`,
    `envoy_listener_ssl_ciphers{${address},envoy_ssl_cipher="TLS_AES_128_GCM_SHA256"} 1`,
    `envoy_listener_ssl_versions{${address},envoy_ssl_version="TLSv1.2"} 1`,
    `envoy_listener_ssl_versions{${address},envoy_ssl_version="TLSv1.3"} 2`,
    `envoy_listener_ssl_curves{${address},envoy_ssl_curve="P-256"} 1`,
    `envoy_listener_ssl_curves{${address},envoy_ssl_curve="X25519"} 1`,
    `envoy_listener_ssl_sigalgs{${address},envoy_ssl_sigalg="ecdsa_secp256r1_sha256"} 2`,
  ]) {
    assert.ok(lines.some((l) => l.split('{')[0] === line.split('{')[0] && sameLabels(l, line)), `${line} in\n${lines.join('\n')}`);
  }
});

/** Two Prometheus samples are equal, whatever the order of their labels. */
function sameLabels(a: string, b: string): boolean {
  const parse = (l: string) => {
    const m = /^([^{]+)\{(.*)\} (\S+)$/.exec(l);
    return m ? [m[1], m[2].split(',').sort().join(','), m[3]].join(' ') : l;
  };
  return parse(a) === parse(b);
}

test('cluster.<name>.ssl.{ciphers,versions,curves,sigalgs}: one per upstream handshake, as the upstream saw it; in /stats/prometheus with Envoy tags', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const leaf = pki.leaf('upstream', ['DNS:upstream.test']);
  const seen: string[] = [];
  // Its groups: P-384 (TLS 1.2 with tls12) and X25519 (TLS 1.3 with tls13, which offers only that).
  const upstream = https.createServer({ ...leaf, ecdhCurve: 'P-384:X25519' }, (_req, res) => res.end('up'));
  upstream.on('secureConnection', (s: tls.TLSSocket) => seen.push(`${s.getProtocol()} ${s.getCipher().name}`));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.after(() => {
    upstream.closeAllConnections();
    return new Promise((r) => upstream.close(r));
  });
  const upPort = (upstream.address() as AddressInfo).port;
  // A server with an RSA key: it signs rsa_pss_rsae_sha256, which openssl s_client's trace shows below.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-out', 'rsa.crt', '-days', '1', '-subj', '/CN=upstream.test', '-addext', 'subjectAltName=DNS:upstream.test'], { cwd: pki.dir, stdio: 'pipe' });
  const rsa = { key: fs.readFileSync(path.join(pki.dir, 'rsa.key'), 'utf8'), cert: fs.readFileSync(path.join(pki.dir, 'rsa.crt'), 'utf8') };
  const rsaUpstream = https.createServer(rsa, (_req, res) => res.end('rsa'));
  await new Promise<void>((r) => rsaUpstream.listen(0, '127.0.0.1', r));
  t.after(() => {
    rsaUpstream.closeAllConnections();
    return new Promise((r) => rsaUpstream.close(r));
  });
  const rsaPort = (rsaUpstream.address() as AddressInfo).port;
  const trace = await run('openssl', ['s_client', '-connect', `127.0.0.1:${rsaPort}`, '-servername', 'upstream.test', '-tls1_3', '-trace']);
  assert.match(trace.out, /CertificateVerify[\s\S]*?Signature Algorithm: rsa_pss_rsae_sha256 \(0x0804\)/);
  const tlsCluster = (params: Record<string, unknown>, ca = pki.ca) => ({
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': UPSTREAM_TLS, sni: 'upstream.test', common_tls_context: { tls_params: params, validation_context: { trusted_ca: { inline_string: ca } } } },
    },
  });
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [
      staticCluster('tls12', [upPort], tlsCluster({ tls_maximum_protocol_version: 'TLSv1_2', cipher_suites: ['ECDHE-ECDSA-AES256-GCM-SHA384'], ecdh_curves: ['P-384', 'P-256'] })),
      staticCluster('tls13', [upPort], tlsCluster({ tls_minimum_protocol_version: 'TLSv1_3', ecdh_curves: ['X25519'] })),
      staticCluster('rsa', [rsaPort], tlsCluster({ tls_minimum_protocol_version: 'TLSv1_3', ecdh_curves: ['P-256'] }, rsa.cert)),
    ],
    listeners: [httpListener('l', routeConfig('r', ['tls12', 'tls13', 'rsa'].map((c) => ({ match: { path: `/${c}` }, route: { cluster: c } }))))],
  });
  // tls12 offers P-256 too: in TLS 1.2 the supported groups also bound the curve of the server's ECDSA certificate.
  // Two requests per cluster on one kept-alive connection: one handshake each.
  for (const p of ['/tls12', '/tls12', '/tls13', '/tls13', '/rsa']) {
    const r = await request(h.port('l'), { path: p });
    assert.equal(r.status, 200, `${p}: ${r.body}`);
  }
  assert.deepEqual(seen.sort(), ['TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384', 'TLSv1.3 TLS_AES_256_GCM_SHA384']);
  assert.deepEqual(dimensions(h, 'cluster.tls12.'), { 'ciphers.ECDHE-ECDSA-AES256-GCM-SHA384': 1, 'curves.P-384': 1, 'sigalgs.ecdsa_secp256r1_sha256': 1, 'versions.TLSv1.2': 1 });
  assert.deepEqual(dimensions(h, 'cluster.tls13.'), { 'ciphers.TLS_AES_256_GCM_SHA384': 1, 'curves.X25519': 1, 'sigalgs.ecdsa_secp256r1_sha256': 1, 'versions.TLSv1.3': 1 });
  assert.deepEqual(dimensions(h, 'cluster.rsa.'), { 'ciphers.TLS_AES_256_GCM_SHA384': 1, 'curves.P-256': 1, 'sigalgs.rsa_pss_rsae_sha256': 1, 'versions.TLSv1.3': 1 });

  const prom = (await request(await adminPort(t, h), { path: '/stats/prometheus' })).body;
  const lines = prom.split('\n').filter((l) => /^envoy_cluster_ssl_(ciphers|versions|curves|sigalgs)\{/.test(l));
  for (const line of [
    'envoy_cluster_ssl_ciphers{cipher_suite="ECDHE-ECDSA-AES256-GCM-SHA384",envoy_cluster_name="tls12"} 1',
    'envoy_cluster_ssl_ciphers{cipher_suite="TLS_AES_256_GCM_SHA384",envoy_cluster_name="tls13"} 1',
    'envoy_cluster_ssl_versions{envoy_cluster_name="tls12",envoy_ssl_version="TLSv1.2"} 1',
    'envoy_cluster_ssl_versions{envoy_cluster_name="tls13",envoy_ssl_version="TLSv1.3"} 1',
    'envoy_cluster_ssl_curves{envoy_cluster_name="tls12",envoy_ssl_curve="P-384"} 1',
    'envoy_cluster_ssl_curves{envoy_cluster_name="tls13",envoy_ssl_curve="X25519"} 1',
    'envoy_cluster_ssl_sigalgs{envoy_cluster_name="tls12",envoy_ssl_sigalg="ecdsa_secp256r1_sha256"} 1',
    'envoy_cluster_ssl_sigalgs{envoy_cluster_name="rsa",envoy_ssl_sigalg="rsa_pss_rsae_sha256"} 1',
  ]) {
    assert.ok(lines.some((l) => sameLabels(l, line)), `${line} in\n${lines.join('\n')}`);
  }
});
