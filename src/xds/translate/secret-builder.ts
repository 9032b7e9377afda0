// SDS: gateway and DestinationRule credentials (`kubernetes://<name>`, `kubernetes://<name>-cacert`)
// served from local secret files, and CA certificates of ConfigMaps (`configmap://<ns>/<name>-cacert`)
// from the configuration. The proxy's own `default` and `ROOTCA` are served by the proxy itself
// (it holds the key), not by the control plane.
import type { EnvoyJson } from '../../envoy/index.ts';
import { configMapCa, parseConfigMapCredential } from '../../model/config-map-ca.ts';
import type { PushContext } from '../../model/push-context.ts';
import { CA_CERT_SUFFIX } from './names.ts';

const PREFIX = 'kubernetes://';

export function buildSecret(push: PushContext, name: string): EnvoyJson | undefined {
  const configMap = parseConfigMapCredential(name.endsWith(CA_CERT_SUFFIX) ? name.slice(0, -CA_CERT_SUFFIX.length) : name);
  if (configMap) {
    const ca = configMapCa(push.resources, ...configMap);
    return ca.ok ? { name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(ca.pem).toString('base64') } } } : undefined;
  }
  if (!name.startsWith(PREFIX)) return undefined;
  const cred = name.slice(PREFIX.length);
  if (cred.endsWith(CA_CERT_SUFFIX)) {
    const own = push.credentials(cred);
    const ca = own?.caCertificate ?? push.credentials(cred.slice(0, -CA_CERT_SUFFIX.length))?.caCertificate;
    if (!ca) return undefined;
    return { name, validation_context: { trusted_ca: { inline_bytes: ca.toString('base64') } } };
  }
  const c = push.credentials(cred);
  if (!c?.certificateChain || !c.privateKey) return undefined;
  return { name, tls_certificate: { certificate_chain: { inline_bytes: c.certificateChain.toString('base64') }, private_key: { inline_bytes: c.privateKey.toString('base64') } } };
}
