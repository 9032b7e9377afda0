// Certificates for the mTLS cases, made with openssl as Istio's CA makes them: a root CA, and
// one workload certificate per side whose only name is its SPIFFE URI (RSA 2048, Istio's default).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir } from './server.ts';

export interface WorkloadCert {
  cert: string;
  key: string;
  /** The root CA that signed both sides. */
  ca: string;
  spiffe: string;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

export function makeMeshCerts(): { client: WorkloadCert; server: WorkloadCert } {
  const dir = scratchDir('mtls');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/O=cluster.local',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const make = (sa: string): WorkloadCert => {
    const spiffe = `spiffe://cluster.local/ns/default/sa/${sa}`;
    const ext = path.join(dir, `${sa}.ext`);
    writeFileSync(ext, `subjectAltName=critical,URI:${spiffe}\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n`);
    openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${sa}.key`, '-out', `${sa}.csr`, '-subj', '/'], dir);
    openssl(['x509', '-req', '-in', `${sa}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${sa}.crt`, '-extfile', ext], dir);
    return { cert: path.join(dir, `${sa}.crt`), key: path.join(dir, `${sa}.key`), ca: path.join(dir, 'ca.crt'), spiffe };
  };
  return { client: make('bench-client'), server: make('bench-server') };
}
