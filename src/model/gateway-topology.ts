// Istio's ProxyConfig gatewayTopology: how the gateway's network sits behind load balancers. Set
// mesh-wide (MeshConfig defaultConfig.gatewayTopology) or per gateway (the `proxy.istio.io/config`
// annotation, which reaches the control plane as node metadata PROXY_CONFIG); only routers
// (gateways) use it, as in Istio.

/** Istio's ForwardClientCertDetails enum, in its proto order (so a number is its index). */
export const FORWARD_CLIENT_CERT_DETAILS = ['UNDEFINED', 'SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY'] as const;
export type ForwardClientCertDetails = (typeof FORWARD_CLIENT_CERT_DETAILS)[number];

export interface GatewayTopology {
  /** Trusted proxies in front of the gateway (its HCMs' xff_num_trusted_hops); Istio's default 0. */
  numTrustedProxies?: number;
  /** How the gateway treats x-forwarded-client-cert; UNDEFINED (or unset) means Istio's gateway default, SANITIZE_SET. */
  forwardClientCertDetails?: ForwardClientCertDetails;
  /** Set (Istio's empty message): the gateway's listeners take the proxy_protocol listener filter. */
  proxyProtocol?: Record<string, never>;
}

const UINT32_MAX = 0xffffffff;

/**
 * Validates a gatewayTopology object (`at` is its path in error messages) and returns it
 * normalised (proto JSON's string numbers and enum numbers accepted, as Istio's parser does);
 * pushes each problem to `errors`.
 */
export function parseGatewayTopology(v: unknown, at: string, errors: string[]): GatewayTopology | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    errors.push(`${at}: expected an object { numTrustedProxies, forwardClientCertDetails, proxyProtocol }, got ${JSON.stringify(v)}`);
    return undefined;
  }
  const out: GatewayTopology = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'numTrustedProxies') {
      const n = typeof val === 'string' && /^\d+$/.test(val) ? Number(val) : val;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > UINT32_MAX) errors.push(`${at}.numTrustedProxies: expected a whole number from 0 to ${UINT32_MAX} (the count of trusted proxies in front of the gateway), got ${JSON.stringify(val)}`);
      else out.numTrustedProxies = n;
    } else if (k === 'forwardClientCertDetails') {
      const name = typeof val === 'number' ? FORWARD_CLIENT_CERT_DETAILS[val] : val;
      if (typeof name !== 'string' || !(FORWARD_CLIENT_CERT_DETAILS as readonly string[]).includes(name)) errors.push(`${at}.forwardClientCertDetails: expected one of ${FORWARD_CLIENT_CERT_DETAILS.join(', ')}, got ${JSON.stringify(val)}`);
      else out.forwardClientCertDetails = name as ForwardClientCertDetails;
    } else if (k === 'proxyProtocol') {
      if (val === null || typeof val !== 'object' || Array.isArray(val) || Object.keys(val).length) errors.push(`${at}.proxyProtocol: expected {} (Istio's ProxyProtocol has no fields), got ${JSON.stringify(val)}`);
      else out.proxyProtocol = {};
    } else {
      errors.push(`${at}.${k}: unknown field (known: numTrustedProxies, forwardClientCertDetails, proxyProtocol)`);
    }
  }
  return out;
}

/** The gateway's topology: the mesh default's fields, each replaced by the gateway's own (its proxy config) when it sets it. */
export function effectiveGatewayTopology(meshDefault: GatewayTopology | undefined, own: GatewayTopology | undefined): GatewayTopology {
  return { ...meshDefault, ...own };
}
