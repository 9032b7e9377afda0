// Gateway rules, after Istio's validating webhook.
import type { GatewaySpec } from '../types/networking.ts';
import { checkLabels } from './common.ts';
import type { Reporter } from './reporter.ts';
import { HOST_HINT, PROTOCOLS, hostProblem, isDns1123Label, isPort, isProtocol } from './rules.ts';

export function validateGateway(spec: GatewaySpec, r: Reporter): void {
  checkLabels(spec.selector, ['spec', 'selector'], r);
  if (!spec.servers?.length) {
    r.error(['spec', 'servers'], 'a gateway must have at least one server', 'add a server with a port and hosts');
    return;
  }
  const portNames = new Map<string, number>();
  spec.servers.forEach((s, i) => {
    const path = ['spec', 'servers', i];
    const { port } = s;
    if (!isPort(port.number)) r.error([...path, 'port', 'number'], `port ${port.number} is out of range`, 'use a port from 1 to 65535');
    if (!port.name) r.error([...path, 'port', 'name'], 'port name must not be empty', 'name the port, e.g. http');
    // As istiod's validateServerPort (pkg/config/validation/validation.go): "targetPort has no impact on Gateways".
    if (port.targetPort !== undefined && port.targetPort > 0) r.error([...path, 'port', 'targetPort'], 'targetPort has no impact on Gateways (Istio rejects it)', 'remove targetPort: the gateway listens on port.number (the pod port a Service targets)');
    else {
      const other = portNames.get(port.name);
      if (other !== undefined) r.error([...path, 'port', 'name'], `port name "${port.name}" is already used by servers[${other}]`, 'give each server port its own name');
      else portNames.set(port.name, i);
    }
    const protocol = (port.protocol ?? '').toUpperCase();
    if (!port.protocol || !isProtocol(protocol)) r.error([...path, 'port', 'protocol'], `"${port.protocol ?? ''}" is not a protocol`, `use one of ${PROTOCOLS.join(', ')}`);
    if (!s.hosts.length) r.error([...path, 'hosts'], 'a server needs at least one host', 'add a host such as "*" or "bookinfo.example.com"');
    s.hosts.forEach((h, j) => {
      const slash = h.indexOf('/');
      const ns = slash >= 0 ? h.slice(0, slash) : undefined;
      const host = slash >= 0 ? h.slice(slash + 1) : h;
      if (ns !== undefined && ns !== '*' && ns !== '.' && !isDns1123Label(ns)) r.error([...path, 'hosts', j], `"${ns}" is not a namespace`, 'write namespace/host with a namespace name, "." or "*"');
      const p = hostProblem(host, { allowIP: true });
      if (p) r.error([...path, 'hosts', j], p, HOST_HINT);
    });
    const tls = s.tls;
    const needsTls = protocol === 'HTTPS' || protocol === 'TLS';
    if (needsTls && !tls) r.error([...path, 'tls'], `a ${protocol} server needs tls settings`, 'add tls: { mode: SIMPLE, credentialName: my-cert }');
    if (tls) {
      const mode = tls.mode ?? 'PASSTHROUGH';
      if (!needsTls && !tls.httpsRedirect) r.warn([...path, 'tls'], `tls settings on a ${protocol || 'plain'} server have no effect`, 'use protocol HTTPS or TLS, or keep only httpsRedirect');
      if ((mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') && needsTls) {
        const hasCreds = tls.credentialName || tls.credentialNames?.length || tls.tlsCertificates?.length || (tls.serverCertificate && tls.privateKey);
        if (!hasCreds) r.error([...path, 'tls'], `TLS mode ${mode} needs a certificate: credentialName, or serverCertificate and privateKey`, 'add credentialName (a secret) or serverCertificate/privateKey files');
        if (mode !== 'SIMPLE' && !tls.credentialName && !tls.credentialNames?.length && !tls.caCertificates) r.error([...path, 'tls'], `TLS mode ${mode} needs caCertificates to verify clients`, 'add caCertificates or use credentialName');
      }
      const sources = (['credentialName', 'credentialNames', 'tlsCertificates'] as const).filter((k) => tls[k] !== undefined);
      if (sources.length > 1) r.error([...path, 'tls', sources[1]], `only one of ${sources.join(', ')} can be set`, 'provide the certificates one way');
      if (tls.credentialName && (tls.serverCertificate || tls.privateKey)) r.error([...path, 'tls', 'credentialName'], 'credentialName cannot be combined with serverCertificate/privateKey', 'use one way of providing the certificate');
      if (mode === 'ISTIO_MUTUAL' && (tls.credentialName || tls.serverCertificate || tls.privateKey || tls.caCertificates)) r.error([...path, 'tls'], 'ISTIO_MUTUAL uses the mesh certificates; no certificate fields may be set', 'remove the certificate fields');
      // Only the implicit default is suspicious: Istio's own "Ingress Gateway without TLS Termination"
      // task writes protocol HTTPS with mode PASSTHROUGH on purpose.
      if (tls.mode === undefined && protocol === 'HTTPS') r.warn([...path, 'tls'], 'TLS mode PASSTHROUGH (the default) passes HTTPS through without terminating it', 'set mode: SIMPLE to terminate TLS at the gateway, or mode: PASSTHROUGH to say it is meant');
    }
    if (s.name !== undefined && s.name === '') r.error([...path, 'name'], 'server name must not be empty', 'remove name or give one');
  });
}
