// The environment of a workload's application in explicit mode: where to listen (a loopback
// port only its sidecar uses) and where its outbound calls go (its sidecar, as an HTTP proxy),
// plus the downward-API facts a Kubernetes pod would see. The Workload's own `env` wins.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import type { ReplicaPlan } from './mesh-plan.ts';
import type { ReplicaPorts } from './replica-ports.ts';

export function workloadEnv(replica: ReplicaPlan, ports: ReplicaPorts, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const proxy = `http://127.0.0.1:${ports.outbound}`;
  const env: NodeJS.ProcessEnv = { ...base };
  // Calls to the app's own ports stay direct; everything else goes through the sidecar.
  const noProxy = Object.values(ports.app).flatMap((p) => [`127.0.0.1:${p}`, `localhost:${p}`]).join(',');
  Object.assign(env, {
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    // Node's http/https (and fetch, with CONNECT) honour the variables above only with this set.
    NODE_USE_ENV_PROXY: '1',
    HOST: '127.0.0.1',
    POD_NAME: replica.name,
    POD_NAMESPACE: replica.namespace,
    SERVICE_ACCOUNT: replica.serviceAccount,
    INSTANCE_IP: '127.0.0.1',
  });
  const declared = replica.spec.ports ?? [];
  if (declared.length > 0) env.PORT = String(ports.app[declared[0].port]);
  for (const p of declared) {
    env[`PORT_${p.port}`] = String(ports.app[p.port]);
    if (p.name) env[`PORT_${p.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = String(ports.app[p.port]);
  }
  // Kubernetes' service environment variables, pointing at the sidecar's port for that upstream.
  for (const [hostPort, local] of Object.entries(ports.upstream)) {
    const name = hostPort.split(/[.:]/)[0].toUpperCase().replace(/-/g, '_');
    env[`${name}_SERVICE_HOST`] = '127.0.0.1';
    env[`${name}_SERVICE_PORT`] = String(local);
  }
  return { ...env, ...(replica.spec.env ?? {}) };
}

const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NO_PROXY', 'no_proxy', 'NODE_USE_ENV_PROXY'];

/** A pod's app (`--isolation netns`): its own ports on every address, no proxy (traffic is captured). */
export function podEnv(replica: ReplicaPlan, address: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, HOST: '0.0.0.0', POD_NAME: replica.name, POD_NAMESPACE: replica.namespace, SERVICE_ACCOUNT: replica.serviceAccount, INSTANCE_IP: address };
  for (const v of PROXY_VARS) delete env[v];
  const declared = replica.spec.ports ?? [];
  if (declared.length > 0) env.PORT = String(declared[0].port);
  for (const p of declared) {
    env[`PORT_${p.port}`] = String(p.port);
    if (p.name) env[`PORT_${p.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = String(p.port);
  }
  return { ...env, ...(replica.spec.env ?? {}) };
}

/**
 * Whether `command` would be found by exec in `cwd` (a path, or a name on PATH). A command run
 * through `ip netns exec` would otherwise only fail inside it, as a crash without a reason.
 */
export function commandExists(command: string, cwd: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes('/')) return executable(path.resolve(cwd, command));
  return (env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && executable(path.join(dir, command)));
}

/** `node` runs on the Node.js that runs rig (the project's Node 24, which runs .ts files). */
export function resolveCommand(command: string): string {
  return command === 'node' ? process.execPath : command;
}
