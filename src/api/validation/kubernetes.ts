// Kubernetes Service and Namespace rules (the API server's), and the local Workload kind's.
import { isIP } from 'node:net';
import type { ConfigMapData, ServiceSpec } from '../types/kubernetes.ts';
import type { WorkloadProbe, WorkloadSpec } from '../types/workload.ts';
import { checkLabels } from './common.ts';
import type { Reporter } from './reporter.ts';
import { isDns1123Label, isDns1123Subdomain, isPort } from './rules.ts';

const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

export function validateService(spec: ServiceSpec, r: Reporter): void {
  const ports = spec.ports ?? [];
  const names = new Set<string>();
  const pairs = new Set<string>();
  ports.forEach((p, i) => {
    const path = ['spec', 'ports', i];
    if (!isPort(p.port)) r.error([...path, 'port'], `port ${p.port} is out of range`, 'use a port from 1 to 65535');
    if (ports.length > 1 && !p.name) r.error([...path, 'name'], 'every port needs a name when a Service has more than one', 'name the port, e.g. http or grpc-api');
    if (p.name !== undefined) {
      if (!isDns1123Label(p.name)) r.error([...path, 'name'], `"${p.name}" is not a valid port name`, 'port names are DNS labels: lower-case letters, digits and -');
      if (names.has(p.name)) r.error([...path, 'name'], `port name "${p.name}" is used twice`, 'give each port its own name');
      names.add(p.name);
    }
    const pair = `${p.port}/${p.protocol ?? 'TCP'}`;
    if (pairs.has(pair)) r.error([...path, 'port'], `port ${pair} is listed twice`, 'list each port once');
    pairs.add(pair);
    const tp = p.targetPort;
    if (typeof tp === 'number' && !isPort(tp)) r.error([...path, 'targetPort'], `targetPort ${tp} is out of range`, 'use a port from 1 to 65535');
    if (typeof tp === 'string' && !/^\d+$/.test(tp) && !IANA_SVC_NAME.test(tp)) r.error([...path, 'targetPort'], `"${tp}" is not a port number or port name`, 'use a number or a container port name of up to 15 characters');
    if (typeof tp === 'string' && /^\d+$/.test(tp) && !isPort(Number(tp))) r.error([...path, 'targetPort'], `targetPort ${tp} is out of range`, 'use a port from 1 to 65535');
  });
  checkLabels(spec.selector, ['spec', 'selector'], r);
  if (spec.type === 'ExternalName') {
    if (!spec.externalName || !isDns1123Subdomain(spec.externalName.toLowerCase())) r.error(['spec', 'externalName'], 'an ExternalName Service needs externalName, a DNS name', 'set externalName: api.example.com');
  } else if (spec.externalName !== undefined) {
    r.error(['spec', 'externalName'], 'externalName is only used with type ExternalName', 'set type: ExternalName or remove externalName');
  }
  if (spec.clusterIP !== undefined && spec.clusterIP !== '' && spec.clusterIP !== 'None' && !isIP(spec.clusterIP)) r.error(['spec', 'clusterIP'], `"${spec.clusterIP}" is not an IP address`, 'use an IP address, "None" (headless) or leave it out');
  if (!ports.length && spec.type !== 'ExternalName' && spec.clusterIP !== 'None') r.error(['spec', 'ports'], 'a Service needs at least one port', 'add ports: [{ name: http, port: 80 }]');
}

const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]+$/;

/** The API server's ConfigMap rules: keys of `[-._a-zA-Z0-9]`, string values, base64 binaryData, no key in both. */
export function validateConfigMap(content: ConfigMapData, r: Reporter): void {
  for (const field of ['data', 'binaryData'] as const) {
    const map: unknown = content[field];
    if (map === undefined) continue;
    if (map === null || typeof map !== 'object' || Array.isArray(map)) {
      r.error([field], `${field} must be a mapping of keys to strings`, 'write key: value pairs, e.g. ca.crt: |');
      continue;
    }
    for (const [key, value] of Object.entries(map)) {
      if (!CONFIG_MAP_KEY.test(key) || key.length > 253) r.error([field, key], `"${key}" is not a valid ConfigMap key`, 'use letters, digits, -, _ and . only');
      if (typeof value !== 'string') r.error([field, key], `${field}.${key} must be a string`, 'quote the value, or write a block scalar (|)');
      else if (field === 'binaryData' && !/^[A-Za-z0-9+/]*={0,2}$/.test(value.replace(/\s/g, ''))) r.error([field, key], `binaryData.${key} is not base64`, 'write the bytes base64-encoded, or use data for text');
      if (field === 'binaryData' && content.data && Object.hasOwn(content.data, key)) r.error([field, key], `key "${key}" is in both data and binaryData`, 'keep it in one of them');
    }
  }
  if (content.immutable !== undefined && typeof content.immutable !== 'boolean') r.error(['immutable'], 'immutable must be true or false', 'write immutable: true');
}

export function validateNamespace(r: Reporter): void {
  const injection = r.resource.metadata.labels?.['istio-injection'];
  if (injection !== undefined && injection !== 'enabled' && injection !== 'disabled') r.warn(['metadata', 'labels', 'istio-injection'], `istio-injection is "${injection}": only "enabled" turns injection on`, 'write istio-injection: enabled (or disabled)');
  if (!isDns1123Label(r.resource.metadata.name)) r.error(['metadata', 'name'], `"${r.resource.metadata.name}" is not a valid namespace name`, 'namespace names are DNS labels: lower-case letters, digits and -, 63 characters');
}

export function validateWorkload(spec: WorkloadSpec, r: Reporter): void {
  if (spec.serviceAccount !== undefined && !isDns1123Subdomain(spec.serviceAccount)) r.error(['spec', 'serviceAccount'], `"${spec.serviceAccount}" is not a service account name`, 'use a DNS-style name such as bookinfo-reviews');
  const names = new Set<string>();
  const numbers = new Set<number>();
  spec.ports?.forEach((p, i) => {
    const path = ['spec', 'ports', i];
    if (numbers.has(p.port)) r.error([...path, 'port'], `port ${p.port} is listed twice`, 'list each port once');
    numbers.add(p.port);
    if (p.name !== undefined) {
      if (!IANA_SVC_NAME.test(p.name)) r.error([...path, 'name'], `"${p.name}" is not a valid port name`, 'use up to 15 lower-case letters, digits and -');
      if (names.has(p.name)) r.error([...path, 'name'], `port name "${p.name}" is used twice`, 'give each port its own name');
      names.add(p.name);
    }
  });
  for (const k of Object.keys(spec.env ?? {})) {
    if (k === '' || k.includes('=') || k.includes('\0')) r.error(['spec', 'env', k], `"${k}" is not an environment variable name`, 'use names such as LOG_LEVEL', { key: true });
  }
  if (spec.readinessProbe) validateWorkloadProbe(spec.readinessProbe, numbers, names, r);
  if (spec.cwd !== undefined && spec.cwd.includes('\0')) r.error(['spec', 'cwd'], 'cwd is not a valid path', 'write a directory path');
}

const PROBE_METHODS = ['httpGet', 'tcpSocket', 'grpc', 'exec'] as const;

function validateWorkloadProbe(probe: WorkloadProbe, numbers: Set<number>, names: Set<string>, r: Reporter): void {
  const at = ['spec', 'readinessProbe'];
  const methods = PROBE_METHODS.filter((m) => probe[m] !== undefined);
  if (methods.length !== 1) r.error(at, methods.length ? `only one of ${methods.join(', ')} may be set` : 'a readiness probe needs one of httpGet, tcpSocket, grpc or exec', 'set exactly one of them');
  const path = probe.httpGet?.path;
  if (path !== undefined && path !== '' && !path.startsWith('/')) r.error([...at, 'httpGet', 'path'], `path "${path}" must start with /`, 'write /health or similar');
  if (probe.exec?.command[0] === '') r.error([...at, 'exec', 'command', 0], 'the command is empty', 'name the program first, e.g. [test, -f, /tmp/ready] (no shell unless you name one: [sh, -c, "..."])');
  for (const m of ['httpGet', 'tcpSocket', 'grpc'] as const) {
    const port = probe[m]?.port;
    if (typeof port === 'string') {
      if (!names.has(port)) r.error([...at, m, 'port'], `"${port}" is not the name of one of the workload's ports`, names.size ? `use one of ${[...names].join(', ')} or a port number` : 'name the port in spec.ports, or use its number');
    } else if (port !== undefined && numbers.size && !numbers.has(port)) {
      r.warn([...at, m, 'port'], `the probe's port ${port} is not one of the workload's ports`, 'probe a port the workload declares');
    }
  }
}

export function validateMetadataName(r: Reporter): void {
  const { kind, metadata } = r.resource;
  const name = metadata.name;
  if (kind === 'Service') {
    if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) r.error(['metadata', 'name'], `"${name}" is not a valid Service name`, 'Service names start with a letter: lower-case letters, digits and -, 63 characters');
  } else if (kind !== 'Namespace' && !isDns1123Subdomain(name)) {
    r.error(['metadata', 'name'], `"${name}" is not a valid name`, 'names are lower-case letters, digits, - and ., 253 characters');
  }
  if (metadata.namespace && !isDns1123Label(metadata.namespace)) r.error(['metadata', 'namespace'], `"${metadata.namespace}" is not a valid namespace name`, 'namespace names are DNS labels: lower-case letters, digits and -');
  checkLabels(metadata.labels, ['metadata', 'labels'], r);
}
