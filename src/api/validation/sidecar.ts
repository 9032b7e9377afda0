// Sidecar, WorkloadEntry and WorkloadGroup rules, after Istio's validating webhook.
import { isIP } from 'node:net';
import type { SidecarSpec, WorkloadEntrySpec, WorkloadGroupSpec } from '../types/networking.ts';
import { checkLabels, checkSelector } from './common.ts';
import type { FieldPath } from '../source-map.ts';
import type { Reporter } from './reporter.ts';
import { HOST_HINT, hostProblem, isDns1123Label, isPort } from './rules.ts';
import { validateWorkloadEndpoint } from './service-entry.ts';

export function validateSidecar(spec: SidecarSpec, r: Reporter): void {
  checkSelector(spec.workloadSelector, ['spec', 'workloadSelector'], r);
  const inPorts = new Set<number>();
  spec.ingress?.forEach((l, i) => {
    const path = ['spec', 'ingress', i];
    const n = l.port?.number;
    if (n === undefined || !isPort(n)) r.error([...path, 'port', 'number'], `ingress port ${String(n)} is missing or out of range`, 'use a port from 1 to 65535');
    else if (inPorts.has(n)) r.error([...path, 'port', 'number'], `ingress port ${n} is listed twice`, 'list each port once');
    else inPorts.add(n);
    targetPort(l.port?.targetPort, [...path, 'port', 'targetPort'], r);
    // As istiod's validateSidecarIngressPortAndBind: an ingress listener binds an IP address (a Unix socket only as its defaultEndpoint).
    if (l.bind !== undefined && !isIP(l.bind)) r.error([...path, 'bind'], `ingress bind "${l.bind}" is not an IP address`, 'bind an IP address such as 127.0.0.1; for a Unix domain socket, set defaultEndpoint: unix:///path');
    if (l.defaultEndpoint !== undefined && !/^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):\d+$|^unix:\/\/[/@]/.test(l.defaultEndpoint)) {
      r.error([...path, 'defaultEndpoint'], `"${l.defaultEndpoint}" is not a valid default endpoint`, 'write 127.0.0.1:PORT, 0.0.0.0:PORT or unix:///path');
    }
  });
  let catchAll = 0;
  spec.egress?.forEach((l, i) => {
    const path = ['spec', 'egress', i];
    if (!l.port) catchAll++;
    targetPort(l.port?.targetPort, [...path, 'port', 'targetPort'], r);
    // As istiod: port 0 is a Unix domain socket listener, whose bind is unix:///path or unix://@name, captured DEFAULT or NONE.
    const uds = l.bind?.startsWith('unix://') ?? false;
    if (l.port?.number === 0) {
      if (!uds) r.error([...path, 'port', 'number'], 'port 0 is for a Unix domain socket listener, which needs a unix:// bind', 'set bind: unix:///path/to/socket, or give a port from 1 to 65535');
      else if (!/^unix:\/\/[/@]./.test(l.bind!)) r.error([...path, 'bind'], `"${l.bind}" is not a Unix domain socket address`, 'write unix:///absolute/path or unix://@abstract-name');
      if (l.captureMode === 'IPTABLES') r.error([...path, 'captureMode'], 'captureMode IPTABLES does not apply to a Unix domain socket listener', 'remove captureMode or set NONE');
    } else if (l.port?.number !== undefined && !isPort(l.port.number)) r.error([...path, 'port', 'number'], `port ${l.port.number} is out of range`, 'use a port from 1 to 65535');
    else if (uds) r.error([...path, 'port', 'number'], 'a Unix domain socket bind needs port number 0', 'set port.number: 0 (with a protocol)');
    else if (l.bind !== undefined && !isIP(l.bind)) r.error([...path, 'bind'], `egress bind "${l.bind}" is not an IP address`, 'bind an IP address such as 127.0.0.1, or unix:///path with port 0');
    if (!l.hosts.length) r.error([...path, 'hosts'], 'an egress listener needs hosts', 'add hosts such as "./*" or "istio-system/*"');
    l.hosts.forEach((h, j) => {
      const slash = h.indexOf('/');
      if (slash < 0) return r.error([...path, 'hosts', j], `"${h}" must be of the form namespace/dnsName`, `write "./${h}" or "*/${h}"`);
      const ns = h.slice(0, slash);
      const host = h.slice(slash + 1);
      if (ns !== '*' && ns !== '.' && ns !== '~' && !isDns1123Label(ns)) r.error([...path, 'hosts', j], `"${ns}" is not a namespace`, 'use a namespace name, "." or "*"');
      const p = hostProblem(host, { allowIP: true });
      if (p) r.error([...path, 'hosts', j], p, HOST_HINT);
    });
  });
  if (catchAll > 1) r.error(['spec', 'egress'], 'only one egress listener may omit the port (the catch-all)', 'give the other egress listeners a port');
  const otp = spec.outboundTrafficPolicy;
  if (otp?.egressProxy && otp.mode !== 'ALLOW_ANY') r.error(['spec', 'outboundTrafficPolicy', 'egressProxy'], 'egressProxy is only used with mode ALLOW_ANY', 'set mode: ALLOW_ANY or remove egressProxy');
  else if (otp?.egressProxy && otp.egressProxy.port?.number === undefined) r.error(['spec', 'outboundTrafficPolicy', 'egressProxy', 'port'], 'egressProxy needs a port', 'set port.number: the egress proxy service port that unknown destinations go to');
}

/** As istiod's Sidecar validation (pkg/config/validation/validation.go): a listener port's targetPort is refused, "targetPort has no impact on Sidecars". */
function targetPort(n: number | undefined, path: FieldPath, r: Reporter): void {
  if (n !== undefined && n > 0) r.error(path, 'targetPort has no impact on Sidecars (Istio rejects it)', 'remove targetPort; an ingress listener sends to defaultEndpoint, an egress listener to the services\' own ports');
}

export function validateWorkloadEntry(spec: WorkloadEntrySpec, r: Reporter): void {
  validateWorkloadEndpoint(spec, ['spec'], r);
  if (spec.serviceAccount !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(spec.serviceAccount)) r.error(['spec', 'serviceAccount'], `"${spec.serviceAccount}" is not a service account name`, 'use a DNS-style name');
}

export function validateWorkloadGroup(spec: WorkloadGroupSpec, r: Reporter): void {
  if (spec.template.address) r.error(['spec', 'template', 'address'], 'a WorkloadGroup template cannot set an address', 'remove address: each workload registers its own');
  validateWorkloadEndpoint({ ...spec.template, address: spec.template.address ?? '0.0.0.0' }, ['spec', 'template'], r);
  checkLabels(spec.metadata?.labels, ['spec', 'metadata', 'labels'], r);
  const probe = spec.probe;
  if (probe) {
    const ways = (['httpGet', 'tcpSocket', 'exec', 'grpc'] as const).filter((k) => probe[k] !== undefined);
    if (ways.length !== 1) r.error(['spec', 'probe'], ways.length ? `only one of ${ways.join(', ')} may be set` : 'a probe needs httpGet, tcpSocket, exec or grpc', 'set exactly one probe method');
    if (probe.httpGet?.scheme && !['HTTP', 'HTTPS'].includes(probe.httpGet.scheme)) r.error(['spec', 'probe', 'httpGet', 'scheme'], `scheme "${probe.httpGet.scheme}" must be HTTP or HTTPS`, 'use HTTP or HTTPS');
    if (probe.httpGet && !isPort(probe.httpGet.port)) r.error(['spec', 'probe', 'httpGet', 'port'], `port ${probe.httpGet.port} is out of range`, 'use a port from 1 to 65535');
    if (probe.tcpSocket && !isPort(probe.tcpSocket.port)) r.error(['spec', 'probe', 'tcpSocket', 'port'], `port ${probe.tcpSocket.port} is out of range`, 'use a port from 1 to 65535');
    if (probe.exec && !probe.exec.command?.[0]) r.error(['spec', 'probe', 'exec', 'command'], 'an exec probe needs a command', 'give the program and its arguments, e.g. [cat, /tmp/healthy]; no shell runs unless you name one ([sh, -c, "..."])');
  }
}
