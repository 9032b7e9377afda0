// The certificates Istio's TLS tasks make with openssl (Secure Gateways, TLS passthrough): a
// self-signed root for example.com (O=example Inc.) and one certificate for a host it signs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Writes example.com.crt/.key to `dir` and `tls.crt`/`tls.key` for `host` (subject O=`organization`,
 * DNS SAN `host`) to `certDir`; returns the example.com root PEM a client should trust.
 */
export function makeTaskCertificates(dir: string, certDir: string, host: string, organization: string): string {
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  mkdirSync(certDir, { recursive: true });
  openssl(['req', '-x509', '-sha256', '-nodes', '-days', '1', '-newkey', 'rsa:2048', '-subj', '/O=example Inc./CN=example.com', '-keyout', 'example.com.key', '-out', 'example.com.crt']);
  openssl(['req', '-out', 'host.csr', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(certDir, 'tls.key'), '-subj', `/CN=${host}/O=${organization}`]);
  writeFileSync(path.join(dir, 'san.ext'), `subjectAltName=DNS:${host}\n`);
  openssl(['x509', '-req', '-sha256', '-days', '1', '-CA', 'example.com.crt', '-CAkey', 'example.com.key', '-set_serial', '0', '-in', 'host.csr', '-out', path.join(certDir, 'tls.crt'), '-extfile', 'san.ext']);
  return readFileSync(path.join(dir, 'example.com.crt'), 'utf8');
}
