// A provider's JWKS as the verifier sees it (JwksSource), the JWKS document's checks, and
// local_jwks (inline or a file, read once per config). remote_jwks: jwt-remote-jwks.ts.
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet, createLocalJWKSet } from 'jose';
import { jose } from './jwt-jose.ts';
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
    this.resolver = jose().createLocalJWKSet(jwks);
  }
  keys(): Promise<KeyResolver> {
    return Promise.resolve(this.resolver);
  }
  refreshForUnknownKid(): Promise<boolean> {
    return Promise.resolve(false);
  }
}

/** Reads a provider's local_jwks (inline, or a file read once per config). */
export function readLocalJwks(local: Reader): JwksSource | undefined {
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
    local.issues.error(local.path, (e as Error).message);
    return undefined;
  }
}
