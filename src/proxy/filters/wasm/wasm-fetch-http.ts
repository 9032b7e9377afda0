// The HTTP client of rig proxy's Wasm module fetches (wasm-fetch.ts, oci-registry.ts): undici's
// fetch over an Agent that trusts what Istio's agent trusts (the system's CAs) and Node's own (its
// bundled roots and NODE_EXTRA_CA_CERTS), with a size limit on every body. As Istio's agent, it
// connects to no link-local address (cloud instance metadata) nor a known cloud metadata address,
// also after a redirect (followed here, hop by hop, dropping Authorization on another origin).
// Hosts listed in WASM_INSECURE_REGISTRIES (comma-separated host[:port], or *), Istio's agent's
// setting, are fetched from without checking their certificate. Loaded only when a plugin's module
// is fetched.
import dns from 'node:dns';
import net from 'node:net';
import tls from 'node:tls';
import { Agent, fetch } from 'undici';

export interface HttpGetOptions {
  readonly headers?: Record<string, string>;
  readonly signal: AbortSignal;
  /** Larger bodies are refused. */
  readonly limit: number;
  /** For error messages: what is fetched (e.g. "the Wasm module", "the image manifest"). */
  readonly what: string;
}

export interface HttpGetResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

function trustedCas(): string[] {
  const get = (tls as { getCACertificates?: (kind: string) => string[] }).getCACertificates;
  if (!get) return [...tls.rootCertificates];
  return [...new Set([...get('default'), ...get('system')])];
}

/** Why an address may not be fetched from, as Istio's agent (pkg/wasm/ssrf.go): link-local, or a cloud metadata service outside that range. */
export function blockedAddress(ip: string): string | undefined {
  const v4 = ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (net.isIPv4(v4)) {
    if (v4.startsWith('169.254.')) return 'link-local';
    if (v4 === '100.100.100.200') return 'a known cloud metadata address';
    return undefined;
  }
  const lower = ip.toLowerCase();
  if (/^fe[89ab][0-9a-f]:/.test(lower)) return 'link-local';
  if (lower === 'fd00:ec2::254') return 'a known cloud metadata address';
  return undefined;
}

function blockedError(host: string, ip: string, why: string): Error {
  return Object.assign(new Error(`connection blocked: ${host} is ${ip === host ? '' : `resolved to ${ip}, `}${why}`), { code: 'EBLOCKED' });
}

/** dns.lookup refusing blocked addresses (undici connects through it for every name). */
const guardedLookup: typeof dns.lookup = ((hostname: string, options: dns.LookupOptions, callback: (err: Error | null, address: string | dns.LookupAddress[], family?: number) => void) => {
  dns.lookup(hostname, { ...options }, (err, address: string | dns.LookupAddress[], family?: number) => {
    if (err) return callback(err, address, family);
    for (const a of Array.isArray(address) ? address : [{ address, family: family ?? 0 }]) {
      const why = blockedAddress(a.address);
      if (why) return callback(blockedError(hostname, a.address, why), address, family);
    }
    callback(null, address, family);
  });
}) as typeof dns.lookup;

let agent: Agent | undefined;
let insecureAgent: Agent | undefined;
const MAX_REDIRECTS = 10;

function insecureHost(u: URL): boolean {
  const list = (process.env.WASM_INSECURE_REGISTRIES ?? '').split(',').map((h) => h.trim());
  return list.includes('*') || list.includes(u.host) || list.includes(u.hostname);
}

function dispatcherFor(u: URL): Agent {
  if (u.protocol === 'https:' && insecureHost(u)) return (insecureAgent ??= new Agent({ connect: { rejectUnauthorized: false, lookup: guardedLookup } }));
  return (agent ??= new Agent({ connect: { ca: trustedCas(), lookup: guardedLookup } }));
}

/** GET `url`; rejects with an Error naming the url and the reason (unreachable, blocked, timed out, too large). */
export async function httpGet(url: string, o: HttpGetOptions): Promise<HttpGetResult> {
  let res;
  let at = new URL(url);
  let headers = o.headers;
  for (let hops = 0; ; hops++) {
    const host = at.hostname.replace(/^\[|\]$/g, '');
    const why = net.isIP(host) ? blockedAddress(host) : undefined;
    if (why) throw new Error(`GET ${at.href} failed: ${blockedError(host, host, why).message}`);
    try {
      res = await fetch(at, { headers, signal: o.signal, dispatcher: dispatcherFor(at), redirect: 'manual' });
    } catch (e) {
      throw new Error(`GET ${at.href} failed: ${reason(e, o.signal)}`, { cause: e });
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || res.status === 304 || !location) break;
    await res.body?.cancel();
    if (hops === MAX_REDIRECTS) throw new Error(`GET ${url} failed: more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(location, at);
    if (next.origin !== at.origin && headers?.authorization) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'authorization'));
    at = next;
  }
  const length = Number(res.headers.get('content-length') ?? NaN);
  if (length > o.limit) {
    await res.body?.cancel();
    throw new Error(`${o.what} at ${url} is ${length} bytes, more than the ${o.limit} rig proxy accepts`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body ?? []) {
      size += chunk.length;
      if (size > o.limit) {
        await res.body?.cancel();
        throw new Error(`${o.what} at ${url} is more than the ${o.limit} bytes rig proxy accepts`);
      }
      chunks.push(Buffer.from(chunk));
    }
  } catch (e) {
    if (size > o.limit) throw e;
    throw new Error(`GET ${url} failed while reading ${o.what}: ${reason(e, o.signal)}`, { cause: e });
  }
  return { status: res.status, headers: res.headers, body: Buffer.concat(chunks) };
}

function reason(e: unknown, signal: AbortSignal): string {
  if (signal.aborted) return signal.reason instanceof Error && signal.reason.name === 'TimeoutError' ? 'timed out' : 'aborted';
  const err = e as Error & { cause?: Error & { code?: string } };
  const cause = err.cause;
  return cause ? `${cause.code ?? cause.name}: ${cause.message}` : err.message;
}

/** True when the error says the server answered a TLS handshake in plain HTTP (an http:// registry). */
export function isPlainHttpAnswer(e: unknown): boolean {
  for (let c = e as (Error & { code?: string; cause?: unknown }) | undefined; c; c = c.cause as typeof c) {
    if (c.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long/i.test(c.message ?? '')) return true;
  }
  return false;
}
