// JWKS for one provider: local (inline or file, read once per config) or remote (fetched over
// HTTP from http_uri.uri, cached for cache_duration, refreshed on expiry or on an unknown kid, the
// last good keys kept when a refresh fails). The remote fetch goes straight to the URI (not yet
// through http_uri.cluster).
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';
import type { Reader } from '../../config/reader.ts';

export type KeyResolver = ReturnType<typeof createLocalJWKSet>;

export interface JwksSource {
  /** The current keys (fetching first when there are none or they expired); undefined when unavailable. */
  keys(): Promise<KeyResolver | undefined>;
  /** Fetches again because a token named a key we do not have; false when not allowed now. */
  refreshForUnknownKid(kid: string | undefined): Promise<boolean>;
}

/** Parses a JWKS document; throws a readable error. */
export function parseJwks(text: string): JSONWebKeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`JWKS is not JSON: ${(e as Error).message}`);
  }
  const keys = (doc as { keys?: unknown }).keys;
  if (!doc || typeof doc !== 'object' || !Array.isArray(keys)) throw new Error('JWKS must be an object with a "keys" list');
  if (keys.some((k) => !k || typeof k !== 'object' || typeof (k as { kty?: unknown }).kty !== 'string')) throw new Error('every JWKS key needs a "kty"');
  return doc as JSONWebKeySet;
}

class LocalJwks implements JwksSource {
  private readonly resolver: KeyResolver;
  constructor(jwks: JSONWebKeySet) {
    this.resolver = createLocalJWKSet(jwks);
  }
  keys(): Promise<KeyResolver> {
    return Promise.resolve(this.resolver);
  }
  refreshForUnknownKid(): Promise<boolean> {
    return Promise.resolve(false);
  }
}

/** Most unknown-kid refreshes allowed per cache period (a token with random kids must not flood the JWKS server). */
const MAX_KID_REFRESHES = 10;

export class RemoteJwks implements JwksSource {
  private readonly uri: string;
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private resolver: KeyResolver | undefined;
  private expiresAt = 0;
  private inflight: Promise<boolean> | undefined;
  private readonly kidsTried = new Set<string>();

  constructor(uri: string, timeoutMs: number, cacheMs: number) {
    this.uri = uri;
    this.timeoutMs = timeoutMs;
    this.cacheMs = cacheMs;
  }

  private fetchNow(): Promise<boolean> {
    this.inflight ??= (async () => {
      try {
        const res = await fetch(this.uri, { signal: AbortSignal.timeout(this.timeoutMs), headers: { accept: 'application/json' } });
        if (res.status !== 200) throw new Error(`JWKS server answered ${res.status}`);
        this.resolver = createLocalJWKSet(parseJwks(await res.text()));
        this.expiresAt = Date.now() + this.cacheMs;
        return true;
      } catch {
        // Keep the last good keys; try again on the next request after a short pause.
        if (this.resolver) this.expiresAt = Date.now() + Math.min(this.cacheMs, 5000);
        return false;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  async keys(): Promise<KeyResolver | undefined> {
    if (!this.resolver) await this.fetchNow();
    else if (Date.now() >= this.expiresAt) {
      this.kidsTried.clear();
      void this.fetchNow();
    }
    return this.resolver;
  }

  async refreshForUnknownKid(kid: string | undefined): Promise<boolean> {
    const key = kid ?? '';
    if (this.kidsTried.has(key) || this.kidsTried.size >= MAX_KID_REFRESHES) return false;
    this.kidsTried.add(key);
    return this.fetchNow();
  }
}

// Remote sources outlive one LDS update (so the cache survives config pushes), keyed by their settings.
const remotes = new Map<string, RemoteJwks>();

/** Reads a provider's remote_jwks or local_jwks. */
export function readJwksSource(provider: Reader): JwksSource | undefined {
  const remote = provider.obj('remote_jwks');
  const local = provider.obj('local_jwks');
  if (remote && local) provider.issues.error(provider.path, 'a provider needs one of remote_jwks and local_jwks, not both');
  if (remote) {
    const hu = remote.obj('http_uri');
    const uri = hu?.str('uri') ?? '';
    const timeoutMs = hu?.durationMs('timeout', 1000) ?? 1000;
    hu?.accept('cluster');
    hu?.done();
    if (!/^https?:\/\//.test(uri)) remote.issues.error(remote.at('http_uri.uri'), `remote_jwks needs an http(s) uri, got "${uri}"`);
    const cacheMs = remote.durationMs('cache_duration', 600_000);
    remote.accept('async_fetch', 'retry_policy');
    remote.done();
    const k = `${uri}|${timeoutMs}|${cacheMs}`;
    let s = remotes.get(k);
    if (!s) remotes.set(k, (s = new RemoteJwks(uri, timeoutMs, cacheMs)));
    return s;
  }
  if (local) {
    let text: string | undefined;
    if (local.has('inline_string')) text = local.str('inline_string');
    else if (local.has('filename')) {
      try {
        text = readFileSync(local.str('filename'), 'utf8');
      } catch (e) {
        local.issues.error(local.at('filename'), `cannot read the JWKS file: ${(e as Error).message}`);
      }
    } else local.issues.error(local.path, 'local_jwks needs inline_string or filename');
    local.done();
    if (text === undefined) return undefined;
    try {
      return new LocalJwks(parseJwks(text));
    } catch (e) {
      provider.issues.error(provider.at('local_jwks'), (e as Error).message);
      return undefined;
    }
  }
  provider.issues.error(provider.path, 'a provider needs remote_jwks or local_jwks');
  return undefined;
}
