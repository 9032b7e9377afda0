// The control plane the process-level e2e tests connect real `rig proxy` processes to: in-process
// with its CA in a fresh state directory (xDS on the plaintext port, certificates over TLS), or a
// `rig controlplane` process watching a config directory.
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { attachCertificateAuthority, type BootstrapTokens, type CaAttachOptions, type CertificateAuthority } from '../../src/ca/index.ts';
import { MemoryConfigStore } from '../../src/config/memory-store.ts';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/xds/controlplane.ts';
import { spawnRig, stopProcess } from './cli.ts';
import { RIG_START_TIMEOUT_MS } from './rig-proxy.ts';
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

export interface ControlPlaneProcess {
  /** The directory it watches (`<dir>/config`): a file written there is applied. */
  configDir: string;
  xds: number;
  monitoring: number;
  /** What it logged so far. */
  log(): string;
}

/**
 * Starts `rig controlplane …args` watching `<dir>/config`, where `config` (YAML) is written first as
 * mesh.yaml, its state (CA, credentials) in `<dir>/state`, its ports picked by the OS; resolves once
 * it listens and stops it when the test ends.
 */
export async function startControlPlaneProcess(t: TestContext, dir: string, config: string, args: string[] = []): Promise<ControlPlaneProcess> {
  const configDir = path.join(dir, 'config');
  fs.mkdirSync(configDir);
  fs.writeFileSync(path.join(configDir, 'mesh.yaml'), config);
  const portsFile = path.join(dir, 'cp-ports.json');
  const child = spawnRig(['controlplane', '--config', configDir, '--state-dir', path.join(dir, 'state'), '--xds-port', '0', '--monitoring-port', '0', '--tls-port', '0', '--ports-file', portsFile, ...args]);
  let log = '';
  child.stdout?.on('data', (b: Buffer) => (log += b));
  child.stderr?.on('data', (b: Buffer) => (log += b));
  t.after(() => stopProcess(child));
  const ports = await waitForPortsFile(portsFile, RIG_START_TIMEOUT_MS, () => child.exitCode !== null || child.signalCode !== null).catch((err: Error) => {
    throw new Error(`rig controlplane: ${err.message}\n${log}`);
  });
  return { configDir, xds: ports.xds, monitoring: ports.monitoring, log: () => log };
}
