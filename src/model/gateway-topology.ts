// Istio's ProxyConfig gatewayTopology: how the gateway's network sits behind load balancers. Set
// mesh-wide (MeshConfig defaultConfig.gatewayTopology) or per gateway (the `proxy.istio.io/config`
// annotation, which reaches the control plane as node metadata PROXY_CONFIG); only routers
// (gateways) use it, as in Istio.
import { emptyMessage, enumOf, message, uint32 } from './proto-json-fields.ts';

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

const readGatewayTopology = message({
  numTrustedProxies: uint32('the count of trusted proxies in front of the gateway'),
  forwardClientCertDetails: enumOf(FORWARD_CLIENT_CERT_DETAILS),
  proxyProtocol: emptyMessage("Istio's ProxyProtocol"),
});

/**
 * Validates a gatewayTopology object (`at` is its path in error messages) and returns it
 * normalised (proto JSON's string numbers and enum numbers accepted, as Istio's parser does);
 * pushes each problem to `errors`.
 */
export function parseGatewayTopology(v: unknown, at: string, errors: string[]): GatewayTopology | undefined {
  if (v === undefined || v === null) return undefined;
  return readGatewayTopology(v, at, errors) as GatewayTopology | undefined;
}

/** The gateway's topology: the mesh default's fields, each replaced by the gateway's own (its proxy config) when it sets it. */
export function effectiveGatewayTopology(meshDefault: GatewayTopology | undefined, own: GatewayTopology | undefined): GatewayTopology {
  return { ...meshDefault, ...own };
}
