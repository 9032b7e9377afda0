// Istio's resource names (docs/CONTRACTS.md §2).

export function outboundClusterName(port: number, subset: string, host: string): string {
  return `outbound|${port}|${subset}|${host}`;
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/** Istio's SNI for a cluster (BuildDNSSrvSubsetKey), also the name of an AUTO_PASSTHROUGH gateway's SNI-DNAT cluster. */
export function sniDnatClusterName(port: number, subset: string, host: string): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

const SNI_DNAT_NAME = /^(outbound|inbound)_\.(\d+)_\.([^.]*)_\.(.+)$/;

/** `outbound|port|subset|host`, or the SNI-DNAT form `outbound_.port_.subset_.host` (istiod's ParseSubsetKey). */
export function parseClusterName(name: string): { direction: 'outbound' | 'inbound'; port: number; subset: string; host: string } | undefined {
  const p = name.split('|');
  if (p.length === 4 && (p[0] === 'outbound' || p[0] === 'inbound')) return { direction: p[0], port: Number(p[1]), subset: p[2], host: p[3] };
  const m = SNI_DNAT_NAME.exec(name);
  return m ? { direction: m[1] as 'outbound' | 'inbound', port: Number(m[2]), subset: m[3]!, host: m[4]! } : undefined;
}

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster';
export const VIRTUAL_OUTBOUND = 'virtualOutbound';
export const VIRTUAL_INBOUND = 'virtualInbound';
export const HTTP_PROXY_ROUTE = 'http_proxy';
export const OUTBOUND_PORT = 15001;
export const INBOUND_PORT = 15006;

export function listenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

/**
 * A listener's address. Envoy binds an IPv6 address IPv6-only unless ipv4_compat is set; the
 * wildcard `::` (`rig up --bind ::`) is meant for both families, as node and Istio's dual-stack
 * listeners have it.
 */
export function listenerAddress(ip: string, port: number): { socket_address: Record<string, unknown> } {
  return { socket_address: { address: ip, port_value: port, ...(ip === '::' ? { ipv4_compat: true } : {}) } };
}

export function gatewayRouteName(port: number): string {
  return `http.${port}`;
}

export function gatewayHttpsRouteName(port: number, portName: string, gwName: string, gwNamespace: string): string {
  return `https.${port}.${portName}.${gwName}.${gwNamespace}`;
}

/** SDS name of a gateway/DR credential (Istio's `kubernetes://<name>`); a name with its own scheme (`configmap://ns/name`, `invalid://`) is kept, as istiod keeps it. */
export function credentialSecretName(name: string): string {
  return name.includes('://') ? name : `kubernetes://${name}`;
}

export const CA_CERT_SUFFIX = '-cacert';
export const WORKLOAD_SECRET = 'default';
export const ROOT_CA_SECRET = 'ROOTCA';
/** The operating system's trusted CAs, which the proxy's agent serves (Istio's file-root:system). */
export const SYSTEM_CA_SECRET = 'file-root:system';
