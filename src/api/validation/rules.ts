// Value rules shared by the semantic validators: durations, hosts, ports, names, labels,
// regular expressions (RE2, as Envoy runs them), IP addresses.
import { isIP } from 'node:net';
import { RE2JS } from 're2js';

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a duration as Istio accepts it (Go syntax: `1h30m`, `2.5s`, `100ms`); milliseconds, or undefined if invalid. */
export function parseDuration(s: unknown): number | undefined {
  if (typeof s !== 'string' || s === '') return undefined;
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let i = 0;
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * UNITS[m[2]];
    i = re.lastIndex;
  }
  return total;
}

/** The error for a duration, or undefined if it is fine. `min` in ms (default 1ms; 0 allows "0s"). */
export function durationProblem(s: unknown, min = 1): string | undefined {
  const ms = parseDuration(s);
  if (ms === undefined) return `"${String(s)}" is not a duration`;
  if (ms !== 0 && ms < 1) return `${String(s)} is shorter than 1ms, the smallest duration supported`;
  if (ms < min) return `duration must be at least ${min}ms`;
  return undefined;
}

export const DURATION_HINT = 'write a duration such as 500ms, 10s, 1m or 1h30m';

/** RE2 syntax check (Envoy's safe_regex); the error text, or undefined if it compiles. */
export function regexProblem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_CI = /^[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && s.split('.').every((l) => l.length > 0 && isDns1123Label(l));
}

/** A host name, optionally with a leading `*` label (`*.example.com`, `*`); short names allowed. Istio's ValidateWildcardDomain. */
export function hostProblem(host: string, opts: { allowWildcard?: boolean; allowIP?: boolean } = {}): string | undefined {
  if (host === '') return 'host must not be empty';
  if (host.length > 255) return 'host is longer than 255 characters';
  if (opts.allowIP && isIP(host)) return undefined;
  if (host === '*') return opts.allowWildcard === false ? 'wildcard host "*" is not allowed here' : undefined;
  let rest = host;
  if (host.startsWith('*')) {
    if (opts.allowWildcard === false) return 'wildcards are not allowed here';
    if (!host.startsWith('*.')) {
      // "*foo.com" is accepted by Istio as a prefix wildcard on the first label.
      rest = host.slice(1);
      if (rest.startsWith('.')) return `"${host}" is not a valid wildcard host`;
    } else rest = host.slice(2);
  }
  if (rest.includes('*')) return `"${host}": a wildcard is only allowed as the first character`;
  const labels = rest.split('.');
  if (labels[labels.length - 1] === '') labels.pop();
  for (const l of labels) {
    if (l.length === 0) return `"${host}" has an empty label`;
    if (l.length > 63 || !DNS_LABEL_CI.test(l)) return `"${host}" is not a valid host name (label "${l}")`;
  }
  return undefined;
}

export const HOST_HINT = 'use a DNS name such as reviews, reviews.default.svc.cluster.local or *.example.com';

export function isPort(n: unknown): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Kubernetes label key: optional DNS-subdomain prefix + `/` + name. */
export function labelKeyProblem(key: string): string | undefined {
  if (key.includes('*')) return 'wildcards are not allowed in label keys';
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) return `label key prefix "${prefix}" must be a DNS subdomain`;
  if (name.length === 0 || name.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name)) return `"${key}" is not a valid label key`;
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value.includes('*')) return 'wildcards are not allowed in label values';
  if (value === '') return undefined;
  if (value.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(value)) return `"${value}" is not a valid label value (63 characters: letters, digits, - _ .)`;
  return undefined;
}

export function isIpOrCidr(s: string): boolean {
  const [ip, bits, ...rest] = s.split('/');
  if (rest.length) return false;
  const family = isIP(ip);
  if (!family) return false;
  if (bits === undefined) return true;
  if (!/^\d+$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** HTTP header names: RFC 7230 tokens (plus pseudo-headers where allowed). */
export function isHeaderName(s: string): boolean {
  return /^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(s);
}

/** Istio's protocol names (Service port names and Gateway/ServiceEntry ports); case-insensitive. */
export const PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'HTTP_PROXY', 'MONGO', 'MYSQL', 'REDIS', 'TCP', 'TLS', 'UDP', 'UNSUPPORTED'];

export function isProtocol(p: string): boolean {
  return PROTOCOLS.includes(p.toUpperCase());
}

/** The protocol a Service port declares (appProtocol, else the name's prefix before `-`), Istio's rules. */
export function portProtocol(name: string | undefined, appProtocol?: string): string | undefined {
  if (appProtocol) {
    const p = appProtocol.toLowerCase();
    if (p === 'kubernetes.io/h2c') return 'HTTP2';
    if (p === 'kubernetes.io/ws' || p === 'kubernetes.io/wss') return 'HTTP';
    if (isProtocol(p)) return p.toUpperCase();
  }
  if (!name) return undefined;
  const prefix = name.split('-')[0].toLowerCase();
  if (prefix === 'http2' || prefix === 'grpc' || prefix === 'grpc-web') return prefix.toUpperCase();
  if (isProtocol(prefix) && prefix !== 'unsupported') return prefix.toUpperCase();
  return undefined;
}
