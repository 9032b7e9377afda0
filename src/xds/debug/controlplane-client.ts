// Reads the control plane's debug API (and a proxy's admin config_dump) for the CLI.
import { RigError } from '../../core/errors.ts';
import type { EnvoyJson } from '../../envoy/index.ts';

export const DEFAULT_CONTROLPLANE = 'http://127.0.0.1:15014';

export async function getJson(base: string, path: string): Promise<unknown> {
  const url = new URL(path, base.endsWith('/') ? base : base + '/').toString();
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new RigError('MESH_ERR_UNAVAILABLE', `cannot reach ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message} (is the control plane running? pass its monitoring address with --controlplane)`);
  }
  const body = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new RigError('MESH_ERR_UNAVAILABLE', `${url} answered ${res.status} with something that is not JSON`);
  }
  if (!res.ok) {
    const err = (parsed as { error?: string; proxies?: string[] }).error ?? `HTTP ${res.status}`;
    const known = (parsed as { proxies?: string[] }).proxies;
    throw new RigError(res.status === 404 ? 'MESH_ERR_NOT_FOUND' : 'MESH_ERR_USAGE', known?.length ? `${err}; known proxies: ${known.join(', ')}` : err);
  }
  return parsed;
}

/**
 * Istio's root namespace (mesh-wide policies) as the running control plane has it in its mesh
 * config (/debug/mesh, as istiod serves it); istio-system, with a note on stderr, from a control
 * plane too old to serve it.
 */
export async function rootNamespace(base: string): Promise<string> {
  try {
    const mesh = (await getJson(base, 'debug/mesh')) as { rootNamespace?: unknown };
    if (typeof mesh.rootNamespace === 'string' && mesh.rootNamespace) return mesh.rootNamespace;
  } catch (err) {
    if (!(err instanceof RigError && err.code === 'MESH_ERR_NOT_FOUND')) throw err;
  }
  process.stderr.write(`the control plane at ${base} does not say its root namespace (no /debug/mesh); assuming istio-system\n`);
  return 'istio-system';
}

export async function syncz(base: string): Promise<EnvoyJson[]> {
  return (await getJson(base, 'debug/syncz')) as EnvoyJson[];
}

/** The ConfigDump of a proxy from the control plane's view, or from the proxy's own admin endpoint. */
export async function configDump(opts: { controlplane: string; admin?: string; proxy?: string }): Promise<EnvoyJson> {
  // Envoy leaves EDS out of its config dump unless asked (include_eds).
  if (opts.admin) return (await getJson(opts.admin, 'config_dump?include_eds')) as EnvoyJson;
  if (!opts.proxy) throw new RigError('MESH_ERR_USAGE', 'name the proxy (<pod>.<namespace> or its node id), or pass --admin URL of the proxy');
  return (await getJson(opts.controlplane, `debug/config_dump?proxyID=${encodeURIComponent(opts.proxy)}`)) as EnvoyJson;
}
