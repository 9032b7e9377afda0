// The HTTP client of rig proxy's Wasm module fetches (wasm-fetch.ts, oci-registry.ts): undici's
// fetch over an Agent that trusts what Istio's agent trusts (the system's CAs) and Node's own (its
// bundled roots and NODE_EXTRA_CA_CERTS), with a size limit on every body. Loaded only when a
// plugin's module is fetched.
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

let agent: Agent | undefined;

/** GET `url`; rejects with an Error naming the url and the reason (unreachable, timed out, too large). */
export async function httpGet(url: string, o: HttpGetOptions): Promise<HttpGetResult> {
  agent ??= new Agent({ connect: { ca: trustedCas() } });
  let res;
  try {
    res = await fetch(url, { headers: o.headers, signal: o.signal, dispatcher: agent });
  } catch (e) {
    throw new Error(`GET ${url} failed: ${reason(e, o.signal)}`, { cause: e });
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
