// Local bootstrap tokens: JWTs (ES256) whose subject is the workload's SPIFFE id, signed by a key
// in the state directory, with a revocation list beside it. `rig up` / `rig token issue` hand one
// to each workload; the CA accepts it as proof of that identity until it expires or is revoked.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { RigError } from '../core/errors.ts';
import { writeFileAtomic } from './ca-keycert-store.ts';
import { checkIdentityPart, parseSpiffeId, spiffeId } from './spiffe.ts';

export const TOKEN_ISSUER = 'rigging-local';
/** Istio's default audience for CA tokens. */
export const TOKEN_AUDIENCE = 'istio-ca';

const KEY_FILE = 'token-signing-key.pem';
const REVOKED_FILE = 'revoked-tokens.json';

export interface IssuedToken {
  token: string;
  jti: string;
  identity: string;
  expiresAt: Date;
}

export interface VerifiedToken {
  identity: string;
  jti: string;
  expiresAt: Date;
}

interface Revoked {
  jti: string;
  /** Seconds since the epoch; entries are dropped once the token would have expired anyway. */
  exp: number;
  /** The token's identity and when it was revoked (seconds): certificates issued before then cannot renew by themselves. */
  sub?: string;
  at?: number;
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

export class BootstrapTokens {
  readonly dir: string;
  private key: { mtimeMs: number; key: crypto.KeyObject } | undefined;
  private revoked: { mtimeMs: number; jtis: Set<string>; identities: Map<string, number> } | undefined;

  /** Tokens live in `<stateDir>/ca`, beside the CA's own files. */
  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'ca');
  }

  private keyFile(): string {
    return path.join(this.dir, KEY_FILE);
  }

  /** The signing key; created on first issue (exclusively, so concurrent issuers agree on one key). */
  private signingKey(create: boolean): crypto.KeyObject | undefined {
    const file = this.keyFile();
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      if (!create) return undefined;
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const pem = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      try {
        fs.writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      stat = fs.statSync(file);
    }
    if (this.key?.mtimeMs !== stat.mtimeMs) {
      try {
        this.key = { mtimeMs: stat.mtimeMs, key: crypto.createPrivateKey(fs.readFileSync(file, 'utf8')) };
      } catch (err) {
        throw new RigError('MESH_ERR_INVALID_CONFIG', `${file}: cannot read the token signing key (${(err as Error).message})`, { cause: err });
      }
    }
    return this.key.key;
  }

  async issue(p: { namespace: string; serviceAccount: string; trustDomain?: string; ttlSeconds?: number }): Promise<IssuedToken> {
    const trustDomain = p.trustDomain ?? 'cluster.local';
    for (const [kind, v] of [['namespace', p.namespace], ['service account', p.serviceAccount], ['trust domain', trustDomain]] as const) {
      const problem = checkIdentityPart(kind, v);
      if (problem) throw new RigError('MESH_ERR_USAGE', problem);
    }
    const ttl = p.ttlSeconds ?? 365 * 86_400;
    if (!(ttl > 0)) throw new RigError('MESH_ERR_USAGE', `invalid token lifetime ${ttl}s: must be positive`);
    const key = this.signingKey(true)!;
    const identity = spiffeId({ trustDomain, namespace: p.namespace, serviceAccount: p.serviceAccount });
    const jti = crypto.randomUUID();
    const now = Math.floor(Date.now() / 1000);
    const token = await new jose.SignJWT({})
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(identity)
      .setJti(jti)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .sign(key);
    return { token, jti, identity, expiresAt: new Date((now + ttl) * 1000) };
  }

  private revocations(): { jtis: Set<string>; identities: Map<string, number> } {
    const file = path.join(this.dir, REVOKED_FILE);
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(file).mtimeMs;
    } catch {
      return { jtis: new Set(), identities: new Map() };
    }
    if (this.revoked?.mtimeMs !== mtimeMs) {
      const list = readRevoked(file);
      const identities = new Map<string, number>();
      for (const r of list) if (r.sub && r.at) identities.set(r.sub, Math.max(r.at, identities.get(r.sub) ?? 0));
      this.revoked = { mtimeMs, jtis: new Set(list.map((r) => r.jti)), identities };
    }
    return this.revoked;
  }

  /** When a token for this identity was last revoked (ms since the epoch), if ever. */
  identityRevokedAt(identity: string): number | undefined {
    const at = this.revocations().identities.get(identity);
    return at === undefined ? undefined : at * 1000;
  }

  /** Verifies a token: signature, issuer, audience, lifetime, revocation, and a SPIFFE subject. */
  async verify(token: string): Promise<VerifiedToken> {
    const key = this.signingKey(false);
    if (!key) throw new TokenError('no bootstrap token has been issued by this control plane');
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, crypto.createPublicKey(key), { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, algorithms: ['ES256'] }));
    } catch (err) {
      throw new TokenError(`invalid bootstrap token: ${(err as Error).message}`);
    }
    if (!payload.sub || !parseSpiffeId(payload.sub)) throw new TokenError('invalid bootstrap token: its subject is not a SPIFFE workload id');
    if (!payload.jti || !payload.exp) throw new TokenError('invalid bootstrap token: jti and exp are required');
    if (this.revocations().jtis.has(payload.jti)) throw new TokenError(`bootstrap token ${payload.jti} has been revoked`);
    return { identity: payload.sub, jti: payload.jti, expiresAt: new Date(payload.exp * 1000) };
  }

  /** Revokes a token (given whole, or by its jti). Returns the jti. */
  revoke(tokenOrJti: string): string {
    let jti = tokenOrJti;
    let exp = Math.floor(Date.now() / 1000) + 365 * 86_400;
    let sub: string | undefined;
    if (tokenOrJti.split('.').length === 3) {
      let claims: jose.JWTPayload;
      try {
        claims = jose.decodeJwt(tokenOrJti);
      } catch (err) {
        throw new RigError('MESH_ERR_USAGE', `cannot read the token to revoke: ${(err as Error).message}`);
      }
      if (!claims.jti) throw new RigError('MESH_ERR_USAGE', 'the token has no jti claim: it was not issued by rig');
      jti = claims.jti;
      exp = claims.exp ?? exp;
      sub = claims.sub;
    } else if (!/^[0-9a-f-]{36}$/i.test(jti)) {
      throw new RigError('MESH_ERR_USAGE', `"${tokenOrJti}" is neither a token nor a token id (jti)`);
    }
    const file = path.join(this.dir, REVOKED_FILE);
    const now = Date.now() / 1000;
    const list = readRevoked(file).filter((r) => r.exp > now && r.jti !== jti);
    list.push({ jti, exp, ...(sub ? { sub, at: Math.ceil(now) } : {}) });
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(file, JSON.stringify(list, null, 2) + '\n', 0o644);
    return jti;
  }
}

function readRevoked(file: string): Revoked[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  try {
    const list = JSON.parse(text) as unknown;
    if (Array.isArray(list)) return list.filter((r): r is Revoked => typeof r?.jti === 'string' && typeof r?.exp === 'number');
  } catch {
    // fall through: a broken list must not silently un-revoke tokens
  }
  throw new RigError('MESH_ERR_INVALID_CONFIG', `${file} is not a valid revocation list (a JSON array of {jti, exp}); fix or remove it`);
}
