// The in-process control plane with its CA in a fresh state directory: what the process-level e2e
// tests connect real `rig proxy` processes to (xDS on the plaintext port, certificates over TLS).
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { attachCertificateAuthority, type BootstrapTokens, type CaAttachOptions, type CertificateAuthority } from '../../src/ca/index.ts';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/xds/controlplane.ts';
import { tempDir } from './temp-dir.ts';
import { parseYaml } from '../xds/fixtures.ts';

export interface MeshControlPlane {
  /** The state directory (removed when the test ends); the CA keeps its files in `<dir>/ca`. */
  dir: string;
  store: MemoryConfigStore;
  cp: ControlPlane;
  ca: CertificateAuthority;
  tokens: BootstrapTokens;
  /** The CA's TLS port. */
  caPort: number;
  /** The mesh root certificate file proxies trust (`--ca-root-file`). */
  rootFile: string;
  /** Writes a bootstrap token for namespace/serviceAccount to `<dir>/<file>` (mode 0600) and returns its path. */
  tokenFile(namespace: string, serviceAccount: string, file?: string): Promise<string>;
}

/**
 * Starts the control plane (ports picked by the OS) with `config` (YAML) applied, attaches its CA,
 * and stops both when the test ends. `controlPlane` and `ca` pass further options through.
 */
export async function startMeshControlPlane(
  t: TestContext,
  opts: { dirPrefix?: string; config?: string; controlPlane?: Partial<ControlPlaneOptions>; ca?: Partial<CaAttachOptions> } = {},
): Promise<MeshControlPlane> {
  const dir = tempDir(t, opts.dirPrefix ?? 'rig-mesh-');
  const store = new MemoryConfigStore();
  if (opts.config) store.apply(parseYaml(opts.config));
  const cp = await startControlPlane({ store, stateDir: dir, xdsPort: 0, monitoringPort: 0, ...opts.controlPlane });
  t.after(() => cp.stop());
  const { ca, tokens, tlsPort } = await attachCertificateAuthority(cp, { stateDir: dir, tlsPort: 0, ...opts.ca });
  t.after(() => ca.close());
  return {
    dir,
    store,
    cp,
    ca,
    tokens,
    caPort: tlsPort,
    rootFile: path.join(dir, 'ca', 'root-cert.pem'),
    async tokenFile(namespace, serviceAccount, file = `${serviceAccount}.token`) {
      const p = path.join(dir, file);
      fs.writeFileSync(p, (await tokens.issue({ namespace, serviceAccount })).token, { mode: 0o600 });
      return p;
    },
  };
}
