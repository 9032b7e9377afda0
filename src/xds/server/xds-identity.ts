// Who is on an ADS stream, as istiod decides it (pilot/pkg/xds: authenticate, authorize;
// pilot/pkg/autoregistration: ensureProxyCanControlEntry). A stream over TLS is authenticated by
// the same authenticators as the CA (client certificate, bootstrap token); one that presents no
// credential there is refused. A plaintext stream is not authenticated and has no verified
// identity. An authenticated proxy must claim, in its node metadata, the namespace and service
// account it proved (else PERMISSION_DENIED); that proven identity is what lets it control a
// WorkloadEntry: stand for a health-checked one (WORKLOAD_ENTRY) or register under a WorkloadGroup.
import type tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { parseSpiffeId, type SpiffeIdentity } from '../../ca/spiffe.ts';
import type { Proxy } from '../../model/proxy.ts';

/**
 * Authenticates an ADS stream from its metadata and TLS client certificate: the SPIFFE ids it
 * proved, undefined when the stream is not over TLS (not authenticated); throws with the reason
 * when it is over TLS and no credential is valid.
 */
export type XdsAuthenticator = (metadata: grpc.Metadata, peerCertificate: tls.PeerCertificate | undefined) => Promise<string[] | undefined>;

/**
 * Istio's checkConnectionIdentity: the first proven identity in the proxy's namespace and, when its
 * metadata names one, its service account; an error message when none is.
 */
export function verifiedIdentity(proxy: Proxy, identities: readonly string[]): SpiffeIdentity | string {
  const sa = proxy.metadata.SERVICE_ACCOUNT;
  for (const raw of identities) {
    const id = parseSpiffeId(raw);
    if (!id || id.namespace !== proxy.namespace) continue;
    if (typeof sa === 'string' && sa !== '' && id.serviceAccount !== sa) continue;
    return id;
  }
  return `no proven identity (${identities.join(', ') || 'none'}) matches the node's namespace ${proxy.namespace}${typeof sa === 'string' && sa ? ` and service account ${sa}` : ''}`;
}

/**
 * Istio's ensureProxyCanControlEntry: whether a proxy with this verified identity may control an
 * entry of `namespace` whose service account is `serviceAccount` (empty: any); the reason if not.
 */
export function cannotControlEntry(identity: SpiffeIdentity | undefined, what: string, namespace: string, serviceAccount: string | undefined): string | undefined {
  if (!identity) return `${what} can only be controlled by a proxy with a verified identity: connect over TLS (port 15012) with a certificate or token of its service account, or start the control plane with ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY=false`;
  if (identity.namespace !== namespace) return `${what}: namespace mismatch: the proxy proved ${identity.namespace}, the entry is in ${namespace}`;
  if (serviceAccount && identity.serviceAccount !== serviceAccount) return `${what}: service account mismatch: the proxy proved ${identity.serviceAccount}, the entry runs as ${serviceAccount}`;
  return undefined;
}
