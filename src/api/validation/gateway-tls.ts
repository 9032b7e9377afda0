// A Gateway API Gateway's spec.tls (v1.4+): the CRD's rules, and the part istiod does not apply.
import type { GatewayTLSConfig } from '../types/gateway-api.ts';
import type { Reporter } from './reporter.ts';
import { isPort } from './rules.ts';

export function validateGatewayTls(tls: GatewayTLSConfig, r: Reporter): void {
  const ports = new Set<number>();
  tls.frontend?.perPort?.forEach((p, i) => {
    const at = ['spec', 'tls', 'frontend', 'perPort', i, 'port'];
    if (!isPort(p.port)) r.error(at, `${p.port} is not a port number`, 'use 1-65535');
    if (ports.has(p.port)) r.error(at, 'Port for TLS configuration must be unique within the Gateway', 'merge the entries of this port');
    ports.add(p.port);
  });
  if (tls.backend?.clientCertificateRef) {
    r.warn(['spec', 'tls', 'backend', 'clientCertificateRef'], 'clientCertificateRef is checked (the Gateway\'s ResolvedRefs) but not presented to backends: istiod does not implement it (istio/istio#61515), nor does Rigging', 'TLS from this gateway to backends (BackendTLSPolicy) is one-way; a backend that requires a client certificate refuses it');
  }
}
