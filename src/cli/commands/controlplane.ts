// `rig controlplane`: the control plane (istiod's role) serving xDS for a config directory.
import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { createLogger } from '../../core/log.ts';
import { envBool, pilotFeatures } from '../../xds/features.ts';

interface Options {
  config?: string;
  stateDir?: string;
  meshConfig?: string;
  credentialsDir?: string;
  host: string;
  xdsPort: string;
  monitoringPort: string;
  tlsPort: string;
  pluginCaDir?: string;
  ca: boolean;
  portsFile?: string;
  logFormat: 'json' | 'text';
  logLevel?: string;
}

function port(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RigError('MESH_ERR_USAGE', `${flag} must be a port number (0-65535; 0 = any free port), got "${v}"`);
  return n;
}

export function define(cmd: Command): void {
  cmd
    .option('--config <dir>', 'directory (or file) of Istio and Kubernetes configuration to serve; watched for changes')
    .option('--state-dir <dir>', 'where allocated VIPs (and the CA) are kept between runs')
    .option('--mesh-config <file>', 'MeshConfig YAML (rootNamespace, trustDomain, outboundTrafficPolicy, defaultConfig, ...)')
    .option('--credentials-dir <dir>', 'credentialName secrets as <dir>/<name>/{tls.crt,tls.key,ca.crt} (default <state-dir>/credentials)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--xds-port <port>', 'plaintext ADS port (0 = pick a free one)', '15010')
    .option('--monitoring-port <port>', 'metrics and debug HTTP port (0 = pick a free one)', '15014')
    .option('--tls-port <port>', 'TLS port serving ADS and the certificate authority (IstioCertificateService) (0 = pick a free one)', '15012')
    .option('--plugin-ca-dir <dir>', "use your own CA, as Istio's plug-in CA: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem")
    .option('--no-ca', 'run without the certificate authority and the TLS port (no workload certificates, no mTLS)')
    .option('--ports-file <file>', 'write the bound ports as JSON {"xds":n,"monitoring":n,"xdsTls":n} once listening')
    .option('--log-format <format>', 'json or text', 'json')
    .option('--log-level <level>', 'trace, debug, info, warn, error')
    .action(async (o: Options) => {
      const log = createLogger({ name: 'controlplane', format: o.logFormat, level: o.logLevel });
      const validateWorkloadEntryIdentity = envBool('ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY', true);
      pilotFeatures(); // a malformed PILOT_* variable stops here, before anything listens
      if (!o.ca && validateWorkloadEntryIdentity) log.warn('without the CA no proxy proves an identity: WorkloadGroup auto-registration and health-checked WorkloadEntries are refused (set ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY=false to accept them unverified)');
      const { loadMeshConfig, DEFAULT_MESH_CONFIG } = await import('../../model/mesh-config.ts');
      const { openConfigStore } = await import('../../xds/config-source.ts');
      const { startControlPlane } = await import('../../xds/controlplane.ts');
      const mesh = o.meshConfig ? await loadMeshConfig(o.meshConfig) : DEFAULT_MESH_CONFIG;
      const store = await openConfigStore(o.config, log);
      const cp = await startControlPlane({
        store: store.store,
        mesh,
        stateDir: o.stateDir,
        credentialsDir: o.credentialsDir,
        host: o.host,
        xdsPort: port(o.xdsPort, '--xds-port'),
        monitoringPort: port(o.monitoringPort, '--monitoring-port'),
        portsFile: o.portsFile,
        log,
        configErrors: store.errorCount,
        validateWorkloadEntryIdentity,
      });
      let closeCa = () => {};
      if (o.ca) {
        const { attachCertificateAuthority } = await import('../../ca/index.ts');
        // Without a state directory the CA lives for this run only (its root is not kept).
        const caStateDir = o.stateDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'rig-ca-')));
        const { ca, tlsPort } = await attachCertificateAuthority(cp, {
          stateDir: caStateDir,
          trustDomain: mesh.trustDomain,
          pluginCaDir: o.pluginCaDir,
          tlsPort: port(o.tlsPort, '--tls-port'),
          log,
        });
        log.info({ tlsPort, caDir: path.join(caStateDir, 'ca'), persistent: Boolean(o.stateDir) }, 'certificate authority serving on the TLS port');
        closeCa = () => {
          ca.close();
          if (!o.stateDir) rmSync(caStateDir, { recursive: true, force: true });
        };
      }
      const stop = async (signal: string) => {
        log.info({ signal }, 'stopping control plane');
        closeCa();
        await cp.stop();
        await store.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
