// The control plane's JWKS resolver (istiod's, for Istio's default "hybrid" mode): a jwksUri whose
// host is not a mesh service cannot be fetched by the proxies through a cluster, so the control
// plane fetches it and inlines the keys. Generation is synchronous: a URI seen for the first time
// yields nothing yet (its tokens are refused until the keys arrive) and its fetch starts; when keys
// arrive or change (refreshed every 20 minutes, as istiod does) the listeners are told, and the
// control plane pushes again. A failed refresh keeps the last good keys. A rule without jwksUri
// gets its JWKS by OpenID discovery of the issuer (<issuer>/.well-known/openid-configuration).
import { createLogger, type Logger } from '../../../core/log.ts';
import type { Resource } from '../../../api/resource.ts';
import type { JWTRule, RequestAuthenticationSpec } from '../../../api/types/security.ts';

/** istiod's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL default. */
const REFRESH_INTERVAL_MS = 20 * 60_000;
/** After a failed first fetch, try again this soon. */
const RETRY_MS = 10_000;
/** URIs not asked for during this long are forgotten (when the resolver cannot tell which are still in use). */
const FORGET_AFTER_MS = 2 * REFRESH_INTERVAL_MS;

interface Entry {
  /** The URI is an issuer: its jwks_uri comes from OpenID discovery. */
  discover: boolean;
  jwks?: string;
  error?: string;
  timeoutMs: number;
  lastUsed: number;
  nextFetch: number;
  fetching?: Promise<void>;
}

function validJwks(text: string): string {
  const doc = JSON.parse(text) as { keys?: unknown };
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.keys)) throw new Error('the document is not a JWKS (no "keys" list)');
  return JSON.stringify(doc);
}

async function getText(uri: string, timeoutMs: number): Promise<string> {
  const res = await fetch(uri, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${uri} answered ${res.status}`);
  return text;
}

/** OpenID Connect discovery: the issuer's jwks_uri. */
async function discoverJwksUri(issuer: string, timeoutMs: number): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const doc = JSON.parse(await getText(url, timeoutMs)) as { jwks_uri?: unknown };
  if (typeof doc?.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) throw new Error(`${url} has no http(s) jwks_uri`);
  return doc.jwks_uri;
}

function entryKey(uri: string, discover: boolean): string {
  return `${discover ? 'issuer' : 'jwks'} ${uri}`;
}

/** The resolver entries the RequestAuthentications among `resources` may ask for. */
export function jwksInUse(resources: readonly Resource[]): Set<string> {
  const keys = new Set<string>();
  for (const r of resources) {
    if (r.kind !== 'RequestAuthentication') continue;
    for (const rule of ((r.spec as RequestAuthenticationSpec).jwtRules ?? []) as JWTRule[]) {
      if (rule.jwksUri) keys.add(entryKey(rule.jwksUri, false));
      else if (!rule.jwks) keys.add(entryKey(rule.issuer, true));
    }
  }
  return keys;
}

export class JwksResolver {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private log: Logger | undefined;
  private readonly intervalMs: number;
  /** What the config still asks for (the control plane's store); unset, entries are forgotten by age. */
  private inUse: (() => Set<string>) | undefined;

  constructor(opts: { refreshIntervalMs?: number } = {}) {
    this.intervalMs = opts.refreshIntervalMs ?? REFRESH_INTERVAL_MS;
  }

  /** Called when keys of some URI arrive or change (the caller pushes config again). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Tells the resolver how to see which URIs the config still uses: the others stop being fetched
   * at the next tick, so a removed policy's unreachable jwksUri is not retried (and warned of)
   * every 10 s for 40 minutes. Returns a function that undoes it.
   */
  trackUse(inUse: () => Set<string>): () => void {
    this.inUse = inUse;
    return () => {
      if (this.inUse === inUse) this.inUse = undefined;
    };
  }

  /** The JWKS (JSON text) of `uri` (or, with `discover`, of the issuer `uri`) if known; starts fetching it otherwise. */
  get(uri: string, timeoutMs: number, discover = false): { jwks?: string; error?: string } {
    const key = entryKey(uri, discover);
    let e = this.entries.get(key);
    if (!e) {
      this.entries.set(key, (e = { discover, timeoutMs, lastUsed: Date.now(), nextFetch: 0 }));
      this.fetch(uri, e);
      this.schedule();
    }
    e.lastUsed = Date.now();
    return { jwks: e.jwks, error: e.jwks ? undefined : (e.error ?? 'not fetched yet') };
  }

  private fetch(key: string, e: Entry): void {
    const uri = key.slice(key.indexOf(' ') + 1);
    e.fetching ??= (async () => {
      try {
        const jwks = validJwks(await getText(e.discover ? await discoverJwksUri(uri, e.timeoutMs) : uri, e.timeoutMs));
        e.error = undefined;
        e.nextFetch = Date.now() + this.intervalMs;
        if (jwks !== e.jwks) {
          e.jwks = jwks;
          for (const l of this.listeners) l();
        }
      } catch (err) {
        e.error = `cannot fetch ${uri}: ${(err as Error).message}`;
        e.nextFetch = Date.now() + (e.jwks ? this.intervalMs : RETRY_MS);
        (this.log ??= createLogger({ name: 'jwks' })).warn({ uri, err: (err as Error).message, keptLastGoodKeys: Boolean(e.jwks) }, 'JWKS fetch failed');
      } finally {
        e.fetching = undefined;
      }
    })();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), Math.min(this.intervalMs, RETRY_MS));
    this.timer.unref();
  }

  private tick(): void {
    const now = Date.now();
    const inUse = this.inUse?.();
    for (const [key, e] of this.entries) {
      if (inUse ? !inUse.has(key) : now - e.lastUsed > Math.max(FORGET_AFTER_MS, 2 * this.intervalMs)) this.entries.delete(key);
      else if (now >= e.nextFetch) this.fetch(key, e);
    }
    if (!this.entries.size) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** The control plane's resolver (one per process, like istiod's). */
export const jwksResolver = new JwksResolver();
