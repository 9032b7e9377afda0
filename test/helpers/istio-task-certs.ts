// The certificates Istio's tasks make with openssl: for the TLS tasks (Secure Gateways, TLS
// passthrough) a self-signed root for example.com (O=example Inc.) and one certificate for a host
// it signs; for "Plug in CA Certificates" the cacerts files, a root and an intermediate CA.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/**
 * Istio's plug-in CA files in `dir` (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem): a
 * self-signed RSA root (subject `root`; its root-key.pem stays beside them) and an ECDSA P-256
 * intermediate CA it signs (subject `intermediate`).
 */
export function makePluginCaFiles(dir: string, subjects: { root: string; intermediate: string }): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'ext.cnf'), '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root-key.pem', '-out', 'root-cert.pem', '-days', '30', '-subj', subjects.root, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.csr', '-subj', subjects.intermediate);
  openssl('x509', '-req', '-in', 'ca.csr', '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-CAcreateserial', '-out', 'ca-cert.pem', '-days', '10', '-extfile', 'ext.cnf', '-extensions', 'ca');
  writeFileSync(path.join(dir, 'cert-chain.pem'), readFileSync(path.join(dir, 'ca-cert.pem'), 'utf8') + readFileSync(path.join(dir, 'root-cert.pem'), 'utf8'));
  chmodSync(path.join(dir, 'ca-key.pem'), 0o600);
}
