// Test certificates made with openssl (a Debian package, see .ci/run): a CA and leaf certificates
// with SPIFFE URI SANs and DNS names, in a temporary directory removed by the caller; and the
// Istio-shaped SDS secrets and TLS transport sockets that use them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Leaf {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: string;
  /** A leaf valid for `days` (1; -1: already expired). */
  leaf(name: string, sans: string[], days?: number): Leaf;
  cleanup(): void;
}

function run(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

export function makePki(caName = 'Rig Test CA'): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-pki-'));
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${caName}`], dir);
  return {
    dir,
    ca: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'),
    leaf(name, sans, days = 1) {
      run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
      fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
      run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', String(days), '-extfile', `${name}.ext`], dir);
      return { cert: fs.readFileSync(path.join(dir, `${name}.crt`), 'utf8'), key: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8') };
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Istio-shaped SDS secrets: `default` (cert + key) and `ROOTCA` (trust bundle). */
export function sdsSecrets(leaf: Leaf, ca: string): Record<string, unknown>[] {
  return [
    { name: 'default', tls_certificate: { certificate_chain: { inline_string: leaf.cert }, private_key: { inline_string: leaf.key } } },
    { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: ca } } },
  ];
}

const SDS = (name: string) => ({ name, sds_config: { ads: {} } });

/** A cluster's transport socket originating mesh TLS with the SDS secrets: `sni`, and when given the exact URI SAN the server must present and the ALPN offered. */
export function sdsUpstreamTls(sni: string, opts: { san?: string; alpn?: string[] } = {}): { transport_socket: Record<string, unknown> } {
  const validation = opts.san
    ? { combined_validation_context: { default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: opts.san } }] }, validation_context_sds_secret_config: SDS('ROOTCA') } }
    : { validation_context_sds_secret_config: SDS('ROOTCA') };
  return {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni,
        common_tls_context: { ...(opts.alpn ? { alpn_protocols: opts.alpn } : {}), tls_certificate_sds_secret_configs: [SDS('default')], ...validation },
      },
    },
  };
}

/** A filter chain's transport socket terminating mesh mTLS with the SDS secrets: a client certificate whose URI SAN starts with `sanPrefix` is required. */
export function sdsDownstreamMtls(sanPrefix: string, alpn: string[] = ['h2', 'http/1.1']): Record<string, unknown> {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: true,
      common_tls_context: {
        alpn_protocols: alpn,
        tls_certificate_sds_secret_configs: [SDS('default')],
        combined_validation_context: { default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: sanPrefix } }] }, validation_context_sds_secret_config: SDS('ROOTCA') },
      },
    },
  };
}

/** A filter chain's transport socket terminating TLS with the SDS secrets, the client certificate optional: one listener serves TLS and mTLS clients. */
export function sdsDownstreamOptionalMtls(): Record<string, unknown> {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      common_tls_context: { tls_certificate_sds_secret_configs: [SDS('default')], validation_context_sds_secret_config: SDS('ROOTCA') },
    },
  };
}
