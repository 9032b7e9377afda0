// Credentials for `credentialName` from a local directory, laid out like Kubernetes TLS
// secrets: `<dir>/<name>/tls.crt`, `tls.key`, `ca.crt` (Istio's keys; `cert`/`key`/`cacert` also
// accepted), or like a docker config secret (a WasmPlugin's imagePullSecret): `.dockerconfigjson`.
// Read when a snapshot asks for them.
import fs from 'node:fs';
import path from 'node:path';
import type { Credential, CredentialSource } from '../model/push-context.ts';

function readFirst(dir: string, names: string[]): Buffer | undefined {
  for (const n of names) {
    try {
      return fs.readFileSync(path.join(dir, n));
    } catch {
      // try the next conventional key name
    }
  }
  return undefined;
}

export function directoryCredentials(root: string): CredentialSource {
  return (name: string): Credential | undefined => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return undefined;
    const dir = path.join(root, name);
    if (!fs.existsSync(dir)) return undefined;
    const c: Credential = {
      certificateChain: readFirst(dir, ['tls.crt', 'cert']),
      privateKey: readFirst(dir, ['tls.key', 'key']),
      caCertificate: readFirst(dir, ['ca.crt', 'cacert']),
      dockerConfigJson: readFirst(dir, ['.dockerconfigjson']),
    };
    return c.certificateChain || c.caCertificate || c.dockerConfigJson ? c : undefined;
  };
}
