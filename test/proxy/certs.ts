// Test certificates made with openssl (a Debian package, see .ci/run): a CA and leaf certificates
// with SPIFFE URI SANs and DNS names, in a temporary directory removed by the caller.
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
  leaf(name: string, sans: string[]): Leaf;
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
    leaf(name, sans) {
      run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
      fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
      run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`], dir);
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
