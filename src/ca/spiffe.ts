// SPIFFE identities as Istio forms them: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.

export interface SpiffeIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

const SEGMENT = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;

export function spiffeId(id: SpiffeIdentity): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses an Istio workload SPIFFE id; returns undefined when it is not one. */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m || !TRUST_DOMAIN.test(m[1]!) || !SEGMENT.test(m[2]!) || !SEGMENT.test(m[3]!)) return undefined;
  return { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
}

/** Returns a problem with a namespace / service account / trust domain name, or undefined when it is valid. */
export function checkIdentityPart(kind: 'namespace' | 'service account' | 'trust domain', value: string): string | undefined {
  const re = kind === 'trust domain' ? TRUST_DOMAIN : SEGMENT;
  if (value.length === 0 || value.length > 253 || !re.test(value)) {
    return `invalid ${kind} "${value}": use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`;
  }
  return undefined;
}
