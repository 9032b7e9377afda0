// A CA made with `openssl ca` in a temporary directory, two server certificates it signs (DNS SAN
// `host`; server and client use) and a CRL revoking one of them: what tests of CertificateValidationContext.crl and
// DestinationRule tls.caCrl present to a proxy. Files, not strings: Istio names them by path.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './temp-dir.ts';

export interface CrlPki {
  dir: string;
  /** The CA certificate (PEM file). */
  caFile: string;
  /** The CRL (PEM file) revoking `revoked`. */
  crlFile: string;
  good: { certFile: string; keyFile: string; cert: string; key: string };
  revoked: { certFile: string; keyFile: string; cert: string; key: string };
  ca: string;
}

export function makeCrlPki(t: TestContext, host: string): CrlPki {
  const dir = tempDir(t, 'rig-crl-');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  mkdirSync(path.join(dir, 'issued'));
  writeFileSync(path.join(dir, 'index.txt'), '');
  writeFileSync(path.join(dir, 'serial'), '1000\n');
  writeFileSync(path.join(dir, 'crlnumber'), '1000\n');
  writeFileSync(
    path.join(dir, 'ca.cnf'),
    `[ca]
default_ca = test_ca
[test_ca]
dir = ${dir}
database = $dir/index.txt
serial = $dir/serial
crlnumber = $dir/crlnumber
new_certs_dir = $dir/issued
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_days = 2
default_crl_days = 2
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:${host}
`,
  );
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Rigging CRL test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const issue = (name: string) => {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${host}`);
    openssl('ca', '-batch', '-config', 'ca.cnf', '-extensions', 'server', '-in', `${name}.csr`, '-out', `${name}.crt`, '-notext');
    const certFile = path.join(dir, `${name}.crt`);
    const keyFile = path.join(dir, `${name}.key`);
    return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  };
  const good = issue('good');
  const revoked = issue('revoked');
  openssl('ca', '-config', 'ca.cnf', '-revoke', 'revoked.crt');
  openssl('ca', '-config', 'ca.cnf', '-gencrl', '-out', 'ca.crl');
  const caFile = path.join(dir, 'ca.crt');
  return { dir, caFile, crlFile: path.join(dir, 'ca.crl'), good, revoked, ca: readFileSync(caFile, 'utf8') };
}
