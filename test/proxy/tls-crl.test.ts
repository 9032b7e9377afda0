// CertificateValidationContext.crl on an upstream TLS context, as Envoy applies it: a server whose
// certificate the CRL revokes fails the handshake (503, UF: an upstream connection failure), one
// it does not passes. A crl that cannot be loaded (no file, no CRL in it, no trusted CA to go
// with it) refuses the config with the field's path, as Envoy's "Failed to load CRL" does.
// Certificates and the CRL are made by `openssl ca` in a temporary directory.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { CLUSTER_TYPE } from '../../src/envoy/index.ts';
import { makeCrlPki } from '../helpers/crl-pki.ts';
import { listenLocal } from '../helpers/listen.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { deadPort, request, startRuntime } from './harness.ts';

const HOST = 'backend.crl.test';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

async function httpsServer(t: { after(fn: () => unknown): void }, cert: string, key: string): Promise<number> {
  const server = https.createServer({ cert, key }, (_req, res) => res.end('secure hello'));
  return listenLocal(server, t);
}

function tlsCluster(name: string, port: number, validation: Record<string, unknown>) {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '2s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM_TLS, sni: HOST, common_tls_context: { validation_context: validation } } },
  };
}

test('a static bootstrap with validation_context.crl: the revoked server certificate is refused (503 UF), the other passes', async (t) => {
  const pki = makeCrlPki(t, HOST);
  const goodPort = await httpsServer(t, pki.good.cert, pki.good.key);
  const revokedPort = await httpsServer(t, pki.revoked.cert, pki.revoked.key);
  const listenPort = await deadPort();
  const validation = { trusted_ca: { filename: pki.caFile }, crl: { filename: pki.crlFile }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: HOST } }] };
  const boot = {
    static_resources: {
      listeners: [
        {
          name: 'front',
          address: { socket_address: { address: '127.0.0.1', port_value: listenPort } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'front',
                    access_log: [{ name: 'envoy.access_loggers.stdout', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', log_format: { text_format_source: { inline_string: 'CRL %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n' } } } }],
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                    route_config: {
                      name: 'front',
                      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/good' }, route: { cluster: 'good' } }, { match: { prefix: '/revoked' }, route: { cluster: 'revoked' } }] }],
                    },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [tlsCluster('good', goodPort, validation), tlsCluster('revoked', revokedPort, validation)],
    },
  };
  const file = path.join(pki.dir, 'envoy.yaml');
  fs.writeFileSync(file, stringify(boot));
  const proxy = await startRigProxyFromFile(t, file);

  const good = await request(listenPort, { path: '/good' });
  assert.equal(good.status, 200);
  assert.equal(good.body, 'secure hello');
  const revoked = await request(listenPort, { path: '/revoked' });
  assert.equal(revoked.status, 503);
  assert.match(revoked.body, /certificate revoked/i);
  await waitFor('both access log lines', () => (proxy.stdout().includes('CRL /revoked') ? true : undefined));
  assert.match(proxy.stdout(), /^CRL \/good 200 -$/m);
  assert.match(proxy.stdout(), /^CRL \/revoked 503 UF$/m);
  const stats = (await request(proxy.ports.admin, { path: '/stats?format=json' })).json<{ stats: { name: string; value: number }[] }>().stats;
  assert.equal(stats.find((s) => s.name === 'cluster.revoked.ssl.fail_verify_error')?.value, 1);
});

test('a crl that cannot be loaded refuses the cluster with its path: no file, no CRL in it, no trusted CA', async (t) => {
  const pki = makeCrlPki(t, HOST);
  const h = await startRuntime();
  t.after(() => h.close());
  const garbage = path.join(pki.dir, 'garbage.crl');
  fs.writeFileSync(garbage, '-----BEGIN X509 CRL-----\nbm90IGEgY3Js\n-----END X509 CRL-----\n');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ trusted_ca: { filename: pki.caFile }, crl: { filename: path.join(pki.dir, 'missing.crl') } }, /validation_context\.crl\.filename: cannot read .*missing\.crl/],
    [{ trusted_ca: { filename: pki.caFile }, crl: { filename: pki.caFile } }, /validation_context\.crl: no CRL in it/],
    [{ trusted_ca: { filename: pki.caFile }, crl: { filename: garbage } }, /validation_context\.crl: cannot load the CRL/],
    [{ crl: { filename: pki.crlFile } }, /needs a trusted CA/],
  ];
  for (const [validation, error] of cases) {
    const errors = h.apply(CLUSTER_TYPE, [tlsCluster('c', 1, validation)]);
    assert.ok(errors.some((e) => error.test(e)), `${JSON.stringify(validation)}: ${errors.join('; ')}`);
  }
  assert.deepEqual(h.apply(CLUSTER_TYPE, [tlsCluster('c', 1, { trusted_ca: { filename: pki.caFile }, crl: { filename: pki.crlFile } })]), []);
});
