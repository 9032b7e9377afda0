// JWKS for one provider: local (inline or file, read once per config) or remote (fetched as Envoy
// does, through the cluster named by http_uri.cluster: its load balancer, connection pool and
// transport socket; the URI gives the path and the Host header). Remote keys are cached for
// cache_duration, refreshed on expiry or when a token names an unknown kid (rate-limited), and the
// last good keys are kept when a refresh fails.
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet, createLocalJWKSet } from 'jose';
import { jose } from './jwt-jose.ts';
import type { Reader } from '../../config/reader.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { requestThroughCluster } from '../../upstream/cluster-request.ts';

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
    this.resolver = jose().createLocalJWKSet(jwks);
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
/** After a failed fetch, the next one waits this long (or the cache duration when shorter). */
const RETRY_AFTER_FAILURE_MS = 5000;

export interface RemoteJwksSettings {
  uri: string;
  cluster: string;
  timeoutMs: number;
  cacheMs: number;
}

/** GETs `uri` through a host of `cluster` picked by its load balancer; resolves with the 200 body. */
export async function fetchThroughCluster(clusters: ClusterManager, s: RemoteJwksSettings): Promise<string> {
  const u = new URL(s.uri);
  const res = await requestThroughCluster(clusters, { cluster: s.cluster, method: 'GET', path: u.pathname + u.search, headers: { host: u.host, accept: 'application/json' }, timeoutMs: s.timeoutMs });
  if (res.status !== 200) throw new Error(`JWKS server answered ${res.status}`);
  return res.body.toString();
}

export class RemoteJwks implements JwksSource {
  private readonly s: RemoteJwksSettings;
  private readonly clusters: ClusterManager;
  private resolver: KeyResolver | undefined;
  private expiresAt = 0;
  private inflight: Promise<boolean> | undefined;
  private readonly kidsTried = new Set<string>();

  constructor(s: RemoteJwksSettings, clusters: ClusterManager) {
    this.s = s;
    this.clusters = clusters;
  }

  private fetchNow(): Promise<boolean> {
    this.inflight ??= (async () => {
      try {
        this.resolver = jose().createLocalJWKSet(parseJwks(await fetchThroughCluster(this.clusters, this.s)));
        this.expiresAt = Date.now() + this.s.cacheMs;
        return true;
      } catch {
        // Keep the last good keys; try again after a short pause.
        this.expiresAt = Date.now() + Math.min(this.s.cacheMs, RETRY_AFTER_FAILURE_MS);
        return false;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  async keys(): Promise<KeyResolver | undefined> {
    if (Date.now() < this.expiresAt) return this.resolver;
    this.kidsTried.clear();
    if (!this.resolver) await this.fetchNow();
    else void this.fetchNow();
    return this.resolver;
  }

  async refreshForUnknownKid(kid: string | undefined): Promise<boolean> {
    const key = kid ?? '';
    if (this.kidsTried.has(key) || this.kidsTried.size >= MAX_KID_REFRESHES) return false;
    this.kidsTried.add(key);
    return this.fetchNow();
  }
}

// Remote sources outlive one LDS update (so the cache survives config pushes), per proxy and settings.
const remotes = new WeakMap<ClusterManager, Map<string, RemoteJwks>>();

/** Reads a provider's remote_jwks or local_jwks. */
export function readJwksSource(provider: Reader, clusters: ClusterManager): JwksSource | undefined {
  const remote = provider.obj('remote_jwks');
  const local = provider.obj('local_jwks');
  if (remote && local) provider.issues.error(provider.path, 'a provider needs one of remote_jwks and local_jwks, not both');
  if (remote) {
    const hu = remote.obj('http_uri');
    const uri = hu?.str('uri') ?? '';
    const cluster = hu?.str('cluster') ?? '';
    const timeoutMs = hu?.durationMs('timeout', 1000) ?? 1000;
    hu?.done();
    if (!/^https?:\/\//.test(uri)) remote.issues.error(remote.at('http_uri.uri'), `remote_jwks needs an http(s) uri, got "${uri}"`);
    if (!cluster) remote.issues.error(remote.at('http_uri.cluster'), 'remote_jwks needs the cluster the JWKS is fetched through (http_uri.cluster)');
    const cacheMs = remote.durationMs('cache_duration', 600_000);
    if (remote.has('async_fetch')) remote.issues.warn(remote.at('async_fetch'), 'JWKS are fetched on the first request that needs them (and on expiry), not ahead; ignored');
    if (remote.has('retry_policy')) remote.issues.warn(remote.at('retry_policy'), 'a failed JWKS fetch is not retried (the next request fetches again); ignored');
    remote.accept('async_fetch', 'retry_policy');
    remote.done();
    const k = `${uri}|${cluster}|${timeoutMs}|${cacheMs}`;
    let byKey = remotes.get(clusters);
    if (!byKey) remotes.set(clusters, (byKey = new Map()));
    let s = byKey.get(k);
    if (!s) byKey.set(k, (s = new RemoteJwks({ uri, cluster, timeoutMs, cacheMs }, clusters)));
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
