// CA certificates held in ConfigMaps (key `ca.crt`, as the Gateway API's BackendTLSPolicy and
// frontend validation refer to them, and `cacert` as istiod also reads), named by istiod's
// credential URI `configmap://<namespace>/<name>`. ConfigMaps are configuration: they come from the
// files `rig up -f` reads and from `rig apply`, like any other resource.
import { X509Certificate } from 'node:crypto';
import type { ConfigMapData, Resource } from '../api/index.ts';

export const CONFIG_MAP_CREDENTIAL_PREFIX = 'configmap://';
/** istiod's credential for a reference that did not resolve: nothing is served under it, so TLS to the backend fails. */
export const INVALID_CREDENTIAL = 'invalid://';
const CA_KEYS = ['ca.crt', 'cacert'];

export function configMapCredential(namespace: string, name: string): string {
  return `${CONFIG_MAP_CREDENTIAL_PREFIX}${namespace}/${name}`;
}

export type ConfigMapCa = { ok: true; pem: string } | { ok: false; missing: boolean; message: string };

/** The CA bundle of ConfigMap `namespace/name` among `resources`, or why there is none. */
export function configMapCa(resources: readonly Resource[], namespace: string, name: string): ConfigMapCa {
  const cm = resources.find((r) => r.kind === 'ConfigMap' && r.metadata.namespace === namespace && r.metadata.name === name);
  if (!cm) return { ok: false, missing: true, message: `reference ${namespace}/${name} (of kind ConfigMap) not found` };
  const data = (cm.spec as ConfigMapData).data ?? {};
  const key = CA_KEYS.find((k) => data[k] !== undefined);
  if (!key) return { ok: false, missing: false, message: `found ConfigMap ${namespace}/${name}, but it has no key ca.crt (or cacert); found: ${Object.keys(data).join(', ') || 'no keys'}` };
  try {
    new X509Certificate(data[key]);
  } catch (err) {
    return { ok: false, missing: false, message: `ConfigMap ${namespace}/${name} ${key} is not a PEM certificate: ${(err as Error).message}` };
  }
  return { ok: true, pem: data[key] };
}

/** `configmap://ns/name` → [ns, name]; undefined for another credential. */
export function parseConfigMapCredential(credential: string): [string, string] | undefined {
  if (!credential.startsWith(CONFIG_MAP_CREDENTIAL_PREFIX)) return undefined;
  const rest = credential.slice(CONFIG_MAP_CREDENTIAL_PREFIX.length);
  const slash = rest.indexOf('/');
  return slash > 0 ? [rest.slice(0, slash), rest.slice(slash + 1)] : undefined;
}
