// ServiceEntry rules, after Istio's validating webhook and the CRD's rules.
import { isIP } from 'node:net';
import type { ServiceEntrySpec, WorkloadEntrySpec } from '../types/networking.ts';
import type { FieldPath } from '../source-map.ts';
import { checkExportTo, checkLabels, checkSelector } from './common.ts';
import type { Reporter } from './reporter.ts';
import { HOST_HINT, PROTOCOLS, hostProblem, isDns1123Label, isIpOrCidr, isPort, isProtocol } from './rules.ts';

export function validateServiceEntry(spec: ServiceEntrySpec, r: Reporter): void {
  const resolution = spec.resolution ?? 'NONE';
  spec.hosts.forEach((h, i) => {
    if (h === '*') return r.error(['spec', 'hosts', i], 'a ServiceEntry host cannot be "*"', 'name the external hosts, e.g. "*.example.com"');
    const p = hostProblem(h);
    if (p) r.error(['spec', 'hosts', i], p, HOST_HINT);
    else if (h.startsWith('*') && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !spec.endpoints?.length) {
      r.error(['spec', 'hosts', i], `wildcard host "${h}" cannot be resolved with ${resolution} and no endpoints`, 'use resolution NONE for wildcard hosts, or list endpoints');
    }
  });
  if (!spec.hosts.length) r.error(['spec', 'hosts'], 'a ServiceEntry needs at least one host', 'add hosts');
  spec.addresses?.forEach((a, i) => {
    if (!isIpOrCidr(a)) r.error(['spec', 'addresses', i], `"${a}" is not an IP address or CIDR`, 'write 10.1.2.3 or 10.1.0.0/16');
    else if (a.includes('/') && resolution !== 'NONE' && resolution !== 'STATIC') r.error(['spec', 'addresses', i], 'CIDR addresses are allowed only with NONE or STATIC resolution', 'use single addresses, or resolution STATIC');
  });
  const names = new Set<string>();
  const numbers = new Set<number>();
  spec.ports?.forEach((p, i) => {
    const path = ['spec', 'ports', i];
    if (!isPort(p.number)) r.error([...path, 'number'], `port ${p.number} is out of range`, 'use a port from 1 to 65535');
    if (numbers.has(p.number)) r.error([...path, 'number'], `port number ${p.number} is listed twice`, 'list each port once');
    numbers.add(p.number);
    if (!p.name || !isDns1123Label(p.name.toLowerCase())) r.error([...path, 'name'], `"${p.name}" is not a valid port name`, 'name ports like http or tcp-db');
    if (names.has(p.name)) r.error([...path, 'name'], `port name "${p.name}" is used twice`, 'give each port its own name');
    names.add(p.name);
    if (p.protocol !== undefined && !isProtocol(p.protocol)) r.error([...path, 'protocol'], `"${p.protocol}" is not a protocol`, `use one of ${PROTOCOLS.join(', ')}`);
    if (p.targetPort !== undefined && !isPort(p.targetPort)) r.error([...path, 'targetPort'], `port ${p.targetPort} is out of range`, 'use a port from 1 to 65535');
  });
  if (spec.workloadSelector && spec.endpoints) r.error(['spec', 'workloadSelector'], 'workloadSelector and endpoints cannot both be set', 'use one of them');
  checkSelector(spec.workloadSelector, ['spec', 'workloadSelector'], r);
  checkExportTo(spec.exportTo, r);
  if (resolution === 'NONE' && spec.endpoints) r.error(['spec', 'endpoints'], 'resolution NONE cannot have endpoints', 'use resolution STATIC or DNS with endpoints');
  if (resolution === 'STATIC' && !spec.endpoints?.length && !spec.workloadSelector) r.error(['spec', 'resolution'], 'STATIC resolution needs endpoints (or a workloadSelector)', 'list the endpoints with their IP addresses');
  if (resolution === 'DNS_ROUND_ROBIN' && (spec.endpoints?.length ?? 0) > 1) r.error(['spec', 'endpoints'], 'DNS_ROUND_ROBIN can have at most one endpoint', 'use resolution DNS for several endpoints');
  if (!spec.ports?.length) r.error(['spec', 'ports'], 'a ServiceEntry needs at least one port', 'add ports: [{ number: 443, name: https, protocol: TLS }]');
  spec.endpoints?.forEach((e, i) => {
    validateWorkloadEndpoint(e, ['spec', 'endpoints', i], r, names);
    if (resolution === 'STATIC' && e.address && !isIP(e.address) && !e.address.startsWith('unix://')) r.error(['spec', 'endpoints', i, 'address'], `STATIC resolution needs IP addresses, not "${e.address}"`, 'use an IP address, or resolution DNS for host names');
  });
}

/** A WorkloadEntry, or an endpoint of a ServiceEntry (same fields). `portNames`: the service's port names the endpoint may map. */
export function validateWorkloadEndpoint(e: WorkloadEntrySpec, path: FieldPath, r: Reporter, portNames?: Set<string>): void {
  if (!e.address && !e.network) r.error(path, 'an endpoint needs an address', 'add address: an IP address or a host name');
  if (e.address) {
    if (e.address.startsWith('unix://')) {
      if (e.ports) r.error([...path, 'ports'], 'a Unix socket address cannot have ports', 'remove ports');
      const rest = e.address.slice(7);
      if (!rest.startsWith('/') && !rest.startsWith('@')) r.error([...path, 'address'], 'a Unix socket must be an absolute path or abstract socket', 'write unix:///path/to/socket');
    } else if (!isIP(e.address) && hostProblem(e.address, { allowWildcard: false })) {
      r.error([...path, 'address'], `"${e.address}" is not an IP address or host name`, 'write an IP address or DNS name');
    }
  }
  for (const [name, port] of Object.entries(e.ports ?? {})) {
    if (name.length >= 63 || !/^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/.test(name)) r.error([...path, 'ports', name], `"${name}" is not a valid port name`, 'use letters, digits and -', { key: true });
    if (!isPort(port)) r.error([...path, 'ports', name], `port ${port} is out of range`, 'use a port from 1 to 65535');
    if (portNames && !portNames.has(name)) r.error([...path, 'ports', name], `port "${name}" is not one of the ServiceEntry's ports`, `map one of: ${[...portNames].join(', ') || '(none defined)'}`, { key: true });
  }
  checkLabels(e.labels, [...path, 'labels'], r);
  if (e.weight !== undefined && e.weight < 0) r.error([...path, 'weight'], 'weight must be >= 0', 'use a positive weight');
}
