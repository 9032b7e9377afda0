// `rig controlplane`: the control plane (istiod's role) serving xDS for a config directory.
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { createLogger } from '../../core/log.ts';

interface Options {
  config?: string;
  stateDir?: string;
  meshConfig?: string;
  credentialsDir?: string;
  host: string;
  xdsPort: string;
  monitoringPort: string;
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
    .option('--ports-file <file>', 'write the bound ports as JSON {"xds":n,"monitoring":n} once listening')
    .option('--log-format <format>', 'json or text', 'json')
    .option('--log-level <level>', 'trace, debug, info, warn, error')
    .action(async (o: Options) => {
      const log = createLogger({ name: 'controlplane', format: o.logFormat, level: o.logLevel });
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
      });
      const stop = async (signal: string) => {
        log.info({ signal }, 'stopping control plane');
        await cp.stop();
        await store.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
