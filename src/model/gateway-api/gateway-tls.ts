// A Gateway's spec.tls (Gateway API v1.4+), as istiod reads it (pilot/pkg/config/kube/gateway):
// frontend client-certificate validation, the perPort entry of a listener's port or else the
// default, makes a terminating listener's server MUTUAL (AllowValidOnly) or OPTIONAL_MUTUAL
// accepting unverified certificates (AllowInsecureFallback), verifying against the one
// caCertificateRef (a ConfigMap's ca.crt, or a Secret's); backend.clientCertificateRef is
// resolved for the Gateway's status only, as istiod does (it does not present it to backends).
import { createSecureContext } from 'node:tls';
import type { GatewayApi, Resource, ServerTLSSettings } from '../../api/index.ts';
import { configMapCa, configMapCredential } from '../config-map-ca.ts';
import type { Credential } from '../push-context.ts';
import type { ReferenceGrants } from './reference-grants.ts';
import type { StatusReport } from './status.ts';

type Gateway = Resource<GatewayApi.KubernetesGatewaySpec>;

/** The frontend validation for a listener port: its perPort entry, else the default. */
export function frontendValidation(gw: Gateway, port: number): GatewayApi.FrontendTLSValidation | undefined {
  const f = gw.spec.tls?.frontend;
  const validation = f ? (f.perPort?.find((p) => p.port === port)?.tls ?? f.default).validation : undefined;
  return validation?.caCertificateRefs?.length ? validation : undefined;
}

/**
 * Client-certificate validation on a terminating listener's server TLS: its mode and CA, or false
 * when the CA reference does not resolve (the listener is then not programmed, as with istiod).
 * `modeOption`: Istio's tls-terminate-mode listener option, which takes precedence over the mode.
 * `owner`: the resource declaring the listener, where problems are reported (a ListenerSet's listener
 * follows its parent Gateway's spec.tls).
 */
export function applyFrontendValidation(gw: Gateway, l: GatewayApi.Listener, listenerAt: (string | number)[], tls: ServerTLSSettings, modeOption: string | undefined, resources: readonly Resource[], grants: ReferenceGrants, status: StatusReport, owner: Resource<unknown> = gw): boolean {
  const fv = frontendValidation(gw, l.port);
  if (!fv) return true;
  const refs = fv.caCertificateRefs;
  // Reported on the listener (its status), as istiod does; the reference is in spec.tls.frontend.
  const fail = (reason: string, message: string, hint: string): false => {
    status.condition(owner, 'ResolvedRefs', reason, [...listenerAt, 'tls'], message, hint);
    status.condition(owner, 'Accepted', 'NoValidCACertificate', [...listenerAt, 'tls'], message, hint);
    return false;
  };
  if (refs.length > 1) return fail('InvalidTLS', `listener ${l.name}: only one caCertificateRef is supported`, 'keep one caCertificateRef with every CA certificate in it');
  const ref = refs[0];
  const ns = ref.namespace ?? gw.metadata.namespace;
  const what = `${ref.group}/${ref.kind}/${ref.name}.${ref.namespace ?? ''}`;
  if (ref.group !== '' || (ref.kind !== 'ConfigMap' && ref.kind !== 'Secret')) return fail('InvalidCACertificateKind', `invalid CA certificate reference ${what}, only secret and configmap are allowed`, 'refer to a ConfigMap (or Secret) holding ca.crt');
  if (!grants.allowed('Gateway', gw.metadata.namespace, ref.kind, ns, ref.name)) return fail('RefNotPermitted', `caCertificateRef ${ns}/${ref.name} not accessible to a Gateway in namespace "${gw.metadata.namespace}" (missing a ReferenceGrant?)`, `add a ReferenceGrant in namespace ${ns} from Gateways in ${gw.metadata.namespace} to that ${ref.kind}`);
  if (ref.kind === 'ConfigMap') {
    const ca = configMapCa(resources, ns, ref.name);
    if (!ca.ok) return fail('InvalidCACertificateRef', `invalid CA certificate reference ${what}, ${ca.message}`, ca.missing ? `add ConfigMap ${ns}/${ref.name} with the CA certificate under ca.crt (rig apply -f)` : 'put the PEM CA certificate under data.ca.crt');
    tls.caCertCredentialName = configMapCredential(ns, ref.name);
  } else {
    // A Secret's ca.crt, from the credentials directory as the listener's own certificateRefs.
    tls.caCertCredentialName = ref.name;
  }
  if (modeOption) tls.mode = modeOption === 'SIMPLE' ? 'SIMPLE' : 'MUTUAL';
  else if (fv.mode === 'AllowInsecureFallback') Object.assign(tls, { mode: 'OPTIONAL_MUTUAL', insecureSkipVerify: true });
  else tls.mode = 'MUTUAL';
  return true;
}

/** Whether any frontend validation of the Gateway is AllowInsecureFallback (its InsecureFrontendValidationMode condition). */
export function insecureFrontendValidation(spec: GatewayApi.KubernetesGatewaySpec): boolean {
  const f = spec.tls?.frontend;
  return !!f && [f.default.validation, ...(f.perPort ?? []).map((p) => p.tls.validation)].some((v) => v?.mode === 'AllowInsecureFallback');
}

/** backend.clientCertificateRef: reported in the Gateway's ResolvedRefs when it does not resolve. */
export function checkBackendClientCertificate(gw: Gateway, grants: ReferenceGrants, credential: ((name: string) => Credential | undefined) | undefined, status: StatusReport): void {
  const ref = gw.spec.tls?.backend?.clientCertificateRef;
  if (!ref) return;
  const at = ['spec', 'tls', 'backend', 'clientCertificateRef'];
  const ns = ref.namespace ?? gw.metadata.namespace;
  const what = `${ref.group ?? ''}/${ref.kind ?? 'Secret'}/${ref.name}.${ref.namespace ?? ''}`;
  const fail = (message: string, hint: string) => status.condition(gw, 'ResolvedRefs', 'InvalidClientCertificateRef', at, `invalid clientCertificateRef ${message}`, hint, 'Warning');
  if ((ref.group ?? '') !== '' || (ref.kind ?? 'Secret') !== 'Secret') return fail(`${what}, only secret is allowed`, 'refer to a Secret (group "", kind Secret)');
  if (!grants.allowed('Gateway', gw.metadata.namespace, 'Secret', ns, ref.name)) return fail(`${what}, not accessible to a Gateway in namespace "${gw.metadata.namespace}" (missing a ReferenceGrant?)`, `add a ReferenceGrant in namespace ${ns} from Gateways in ${gw.metadata.namespace} to that Secret`);
  if (!credential) return;
  const c = credential(ref.name);
  if (!c) return fail(`${what}, secret ${ns}/${ref.name} not found`, `put tls.crt and tls.key in <credentials-dir>/${ref.name}/`);
  try {
    createSecureContext({ cert: c.certificateChain, key: c.privateKey });
    if (!c.certificateChain || !c.privateKey) throw new Error('tls.crt and tls.key are both needed');
  } catch (err) {
    fail(`${what}, the certificate is malformed: ${(err as Error).message}`, `put a PEM certificate and its key in <credentials-dir>/${ref.name}/tls.crt and tls.key`);
  }
}
