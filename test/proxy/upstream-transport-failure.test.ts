// An upstream connection that fails, in Envoy's words for %UPSTREAM_TRANSPORT_FAILURE_REASON%
// (and the local reply's "transport failure reason: ..."), through a `rig proxy -c bootstrap.yaml`
// with real sockets: a TLS handshake with a plaintext server is the SSL socket's BoringSSL error; a
// server certificate of another CA, and one whose SAN the matcher refuses, BoringSSL's
// CERTIFICATE_VERIFY_FAILED with the validator's details; a refused connect the connection's
// "delayed connect error: Connection refused". For the router (HTTP/1.1 and HTTP/2 clusters) and
// for tcp_proxy.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { FILE_ACCESS_LOG_TYPE, HCM_TYPE } from '../../src/envoy/index.ts';
import { freePort } from '../../src/local/ports.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { makePki } from './certs.ts';
import { request } from './harness.ts';

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const UNTRUSTED = 'TLS_error:|SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: unable to verify the first certificate:TLS_error_end';
const SAN = 'TLS_error:|SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher:TLS_error_end';
const REFUSED = 'delayed connect error: Connection refused';
const NOT_TLS = 'TLS_error:|SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end';

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

const accessLog = (file: string, format: string) => [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: file, log_format: { text_format_source: { inline_string: format } } } }];

function lines(file: string, n: number): Promise<string[]> {
  return waitFor(`${n} line(s) in ${path.basename(file)}`, () => {
    const all = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    return all.length >= n ? all : undefined;
  });
}

/** Connects to a tcp_proxy listener and resolves once the proxy closed the connection. */
function tcpClosed(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('error', reject);
    s.on('data', () => undefined);
    s.once('close', () => resolve());
  });
}

test('upstream connect failures: %UPSTREAM_TRANSPORT_FAILURE_REASON% and the local reply in Envoy words (untrusted certificate, refused SAN, refused connect)', async (t) => {
  const dir = tempDir(t, 'rig-upstream-failure-');
  const pki = makePki();
  const other = makePki('Other CA');
  t.after(() => {
    pki.cleanup();
    other.cleanup();
  });
  const foreign = other.leaf('foreign', ['DNS:backend.mesh']);
  const stranger = pki.leaf('stranger', ['URI:spiffe://cluster.local/ns/x/sa/stranger']);
  const tlsServer = (leaf: { cert: string; key: string }) => {
    const server = tls.createServer({ cert: leaf.cert, key: leaf.key }, (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    server.on('tlsClientError', () => undefined);
    t.after(() => new Promise((r) => server.close(r)));
    return new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
  };
  const untrustedPort = await tlsServer(foreign);
  const sanPort = await tlsServer(stranger);
  const refusedPort = await freePort();
  // A plaintext HTTP server where TLS is expected: the handshake fails on its answer.
  const plain = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n')).on('error', () => undefined));
  t.after(() => new Promise((r) => plain.close(r)));
  const plainPort = await new Promise<number>((r) => plain.listen(0, '127.0.0.1', () => r((plain.address() as net.AddressInfo).port)));

  const validation = (san?: string) => ({ trusted_ca: { inline_string: pki.ca }, ...(san ? { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: san } }] } : {}) });
  const cluster = (name: string, port: number, tlsValidation?: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    name,
    type: 'STATIC',
    connect_timeout: '5s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...(tlsValidation ? { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni: 'backend.mesh', common_tls_context: { validation_context: tlsValidation } } } } : {}),
    ...extra,
  });
  const route = (p: string, c: string) => ({ match: { path: p }, route: { cluster: c } });
  const httpLog = path.join(dir, 'http.log');
  const tcpLog = path.join(dir, 'tcp.log');
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM_TYPE, stat_prefix: 'http', http_filters: [ROUTER], access_log: accessLog(httpLog, '%REQ(:PATH)% %RESPONSE_FLAGS% %UPSTREAM_TRANSPORT_FAILURE_REASON%\n'), route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [route('/untrusted', 'untrusted'), route('/san', 'san'), route('/refused', 'refused'), route('/not-tls', 'not_tls'), route('/h2/untrusted', 'h2_untrusted'), route('/h2/san', 'h2_san'), route('/h2/refused', 'h2_refused')] }] } } };
  const listener = (name: string, filter: Record<string, unknown>) => ({ name, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [filter] }] });
  const tcpProxy = (name: string, c: string) => listener(name, { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: c, max_connect_attempts: 1, access_log: accessLog(tcpLog, '%UPSTREAM_CLUSTER% %RESPONSE_FLAGS% %UPSTREAM_TRANSPORT_FAILURE_REASON%\n') } });
  const bootstrap = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [listener('http', hcm), tcpProxy('tcp_untrusted', 'untrusted'), tcpProxy('tcp_san', 'san'), tcpProxy('tcp_refused', 'refused')],
      clusters: [cluster('untrusted', untrustedPort, validation()), cluster('san', sanPort, validation('spiffe://cluster.local/ns/x/sa/backend')), cluster('refused', refusedPort), cluster('not_tls', plainPort, validation()), cluster('h2_untrusted', untrustedPort, validation(), H2), cluster('h2_san', sanPort, validation('spiffe://cluster.local/ns/x/sa/backend'), H2), cluster('h2_refused', refusedPort, undefined, H2)],
    },
  };
  const file = path.join(dir, 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  const ports = proxy.ports.listeners;

  // HTTP/1.1 clusters (rig's pool), HTTP/2 ones (undici's pool).
  const cases: [string, string][] = [['/untrusted', UNTRUSTED], ['/san', SAN], ['/refused', REFUSED], ['/not-tls', NOT_TLS], ['/h2/untrusted', UNTRUSTED], ['/h2/san', SAN], ['/h2/refused', REFUSED]];
  for (const [p, reason] of cases) {
    const r = await request(ports.http, { path: p });
    assert.equal(r.status, 503, p);
    assert.equal(r.body, `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${reason}`, p);
  }
  assert.deepEqual(await lines(httpLog, cases.length), cases.map(([p, reason]) => `${p} UF ${reason}`));

  for (const name of ['tcp_untrusted', 'tcp_san', 'tcp_refused']) await tcpClosed(ports[name]);
  assert.deepEqual(await lines(tcpLog, 3), [`untrusted UF ${UNTRUSTED}`, `san UF ${SAN}`, `refused UF ${REFUSED}`]);
});
