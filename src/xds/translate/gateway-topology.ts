// A gateway's HCM fields from its gatewayTopology (mesh default, overridden by its own proxy
// config), as istiod sets them on every gateway HTTP connection manager.
import type { EnvoyJson } from '../../envoy/index.ts';
import { effectiveGatewayTopology } from '../../model/gateway-topology.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';

/**
 * xff_num_trusted_hops = numTrustedProxies; forward_client_cert_details = forwardClientCertDetails,
 * SANITIZE_SET when unset or UNDEFINED (Istio's gateway default); set_current_client_cert_details
 * always subject, cert, uri and dns (Envoy reads it for APPEND_FORWARD and SANITIZE_SET only).
 */
export function gatewayTopologyHcmFields(push: PushContext, proxy: Proxy): EnvoyJson {
  const t = effectiveGatewayTopology(push.mesh.defaultConfig.gatewayTopology, proxy.gatewayTopology);
  const mode = t.forwardClientCertDetails && t.forwardClientCertDetails !== 'UNDEFINED' ? t.forwardClientCertDetails : 'SANITIZE_SET';
  return {
    ...(t.numTrustedProxies ? { xff_num_trusted_hops: t.numTrustedProxies } : {}),
    forward_client_cert_details: mode,
    set_current_client_cert_details: { subject: true, cert: true, uri: true, dns: true },
  };
}
