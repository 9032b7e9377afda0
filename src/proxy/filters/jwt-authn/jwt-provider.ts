// One jwt_authn provider: where its tokens are (headers with value_prefix, query parameters,
// cookies; default `Authorization: Bearer` and `access_token`), how they are verified (issuer,
// audiences, JWKS, clock skew, no `none` algorithm) and what a verified token yields (payload in
// metadata, payload/claim headers, the token removed unless forward).
import type { JWTPayload } from 'jose';
import { jose } from './jwt-jose.ts';
import type { Reader } from '../../config/reader.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import type { HeaderMap, InitManager, RequestHead } from '../filter.ts';
import { readLocalJwks, type JwksSource } from './jwt-jwks-source.ts';
import { readRemoteJwks, type JwksFetchStats } from './jwt-remote-jwks.ts';

/** Envoy's jwt_authn status messages (the 401 body). */
export const JwtStatus = {
  Ok: 'OK',
  Missed: 'Jwt is missing',
  Expired: 'Jwt is expired',
  NotYetValid: 'Jwt not yet valid',
  BadFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  UnknownIssuer: 'Jwt issuer is not configured',
  AudienceNotAllowed: 'Audiences in Jwt are not allowed',
  VerificationFail: 'Jwt verification fails',
  BadAlg: 'Jwt header [alg] is not supported',
  KidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  JwksFetchFail: 'Jwks remote fetch is failed',
} as const;
export type JwtStatus = (typeof JwtStatus)[keyof typeof JwtStatus];

interface HeaderLocation {
  name: string;
  prefix: string;
}

export interface ExtractedToken {
  readonly token: string;
  /** Removes the token from the request (forward: false). */
  remove(head: RequestHead): void;
}

export interface VerifiedToken {
  readonly payload: JWTPayload;
  readonly token: string;
}

export interface JwtProvider {
  readonly name: string;
  readonly issuer: string;
  extract(head: RequestHead): ExtractedToken[];
  verify(token: string): Promise<{ status: JwtStatus; payload?: JWTPayload }>;
  /** Applies a verified token: metadata, headers, token removal. */
  onVerified(head: RequestHead, t: ExtractedToken, payload: JWTPayload, metadata: Record<string, unknown>): void;
}

function first(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function splitPath(path: string): { base: string; params: URLSearchParams } {
  const q = path.indexOf('?');
  return q < 0 ? { base: path, params: new URLSearchParams() } : { base: path.slice(0, q), params: new URLSearchParams(path.slice(q + 1)) };
}

function cookies(h: HeaderMap): Map<string, string> {
  const out = new Map<string, string>();
  const raw = h.cookie;
  for (const line of Array.isArray(raw) ? raw : raw ? [raw] : []) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
  }
  return out;
}

function claimValue(payload: JWTPayload, claim: string): unknown {
  let v: unknown = payload;
  for (const k of claim.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

function mapError(e: unknown): JwtStatus {
  const { errors } = jose();
  if (e instanceof errors.JWTExpired) return JwtStatus.Expired;
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf' || e.claim === 'iat') return JwtStatus.NotYetValid;
    if (e.claim === 'aud') return JwtStatus.AudienceNotAllowed;
    if (e.claim === 'iss') return JwtStatus.UnknownIssuer;
    return JwtStatus.VerificationFail;
  }
  if (e instanceof errors.JWKSNoMatchingKey) return JwtStatus.KidAlgMismatch;
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported) return JwtStatus.BadAlg;
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return JwtStatus.BadFormat;
  return JwtStatus.VerificationFail;
}

/** What a provider's JWKS reading needs of the filter's compile context. */
export interface JwksContext {
  readonly clusters: ClusterManager;
  readonly initManager: InitManager;
  /** The filter's stat prefix (http.<hcm>.jwt_authn.<stat_prefix>). */
  readonly statPrefix: string;
  readonly stats: JwksFetchStats;
}

function readJwks(provider: Reader, ctx: JwksContext): JwksSource | undefined {
  const remote = provider.obj('remote_jwks');
  const local = provider.obj('local_jwks');
  if (remote && local) provider.issues.error(provider.path, 'a provider needs one of remote_jwks and local_jwks, not both');
  if (remote) return readRemoteJwks(remote, ctx);
  if (local) return readLocalJwks(local);
  provider.issues.error(provider.path, 'a provider needs remote_jwks or local_jwks');
  return undefined;
}

export function readProvider(name: string, r: Reader, ctx: JwksContext): JwtProvider {
  const issuer = r.str('issuer');
  const audiences = r.strs('audiences');
  const jwks = readJwks(r, ctx);
  const forward = r.bool('forward', false);
  let headers: HeaderLocation[] = r.objs('from_headers').map((h) => {
    const loc = { name: h.str('name').toLowerCase(), prefix: h.str('value_prefix') };
    if (!loc.name) h.issues.error(h.at('name'), 'a header location needs a name');
    h.done();
    return loc;
  });
  let params = r.strs('from_params');
  const cookieNames = r.strs('from_cookies');
  if (!headers.length && !params.length && !cookieNames.length) {
    headers = [{ name: 'authorization', prefix: 'Bearer ' }];
    params = ['access_token'];
  }
  const payloadHeader = r.str('forward_payload_header').toLowerCase();
  const payloadInMetadata = r.str('payload_in_metadata');
  const claimHeaders = r.objs('claim_to_headers').map((c) => {
    const m = { header: c.str('header_name').toLowerCase(), claim: c.str('claim_name') };
    c.done();
    return m;
  });
  const skewSec = r.num('clock_skew_seconds', 60);
  const requireExp = r.bool('require_expiration', false);
  const pad = r.bool('pad_forward_payload_header', false);
  r.done();
  return {
    name,
    issuer,
    extract(head) {
      const out: ExtractedToken[] = [];
      for (const loc of headers) {
        const v = first(head.headers, loc.name);
        if (v === undefined) continue;
        // value_prefix may sit anywhere in the value (Envoy); the token runs to the next , or ;
        const at = loc.prefix ? v.indexOf(loc.prefix) : 0;
        if (at < 0) continue;
        const token = v.slice(at + loc.prefix.length).split(/[,;\s]/)[0];
        if (token) out.push({ token, remove: (h) => void delete h.headers[loc.name] });
      }
      if (params.length) {
        const q = splitPath(head.path).params;
        for (const p of params) {
          const token = q.get(p);
          if (!token) continue;
          out.push({
            token,
            remove(h) {
              const sp = splitPath(h.path);
              sp.params.delete(p);
              const rest = sp.params.toString();
              h.path = rest ? `${sp.base}?${rest}` : sp.base;
            },
          });
        }
      }
      if (cookieNames.length) {
        const jar = cookies(head.headers);
        for (const c of cookieNames) {
          const token = jar.get(c);
          if (token) out.push({ token, remove: () => undefined });
        }
      }
      return out;
    },
    async verify(token) {
      let header;
      let unverified: JWTPayload;
      try {
        header = jose().decodeProtectedHeader(token);
        unverified = jose().decodeJwt(token);
      } catch {
        return { status: JwtStatus.BadFormat };
      }
      if (typeof header.alg !== 'string' || header.alg === 'none') return { status: JwtStatus.BadAlg };
      if (issuer && unverified.iss !== issuer) return { status: JwtStatus.UnknownIssuer };
      if (requireExp && unverified.exp === undefined) return { status: JwtStatus.Expired };
      if (!jwks) return { status: JwtStatus.JwksFetchFail };
      const run = async (): Promise<{ status: JwtStatus; payload?: JWTPayload }> => {
        const keys = await jwks.keys();
        if (!keys) return { status: JwtStatus.JwksFetchFail };
        try {
          const { payload } = await jose().jwtVerify(token, keys, {
            issuer: issuer || undefined,
            audience: audiences.length ? audiences : undefined,
            clockTolerance: skewSec,
          });
          return { status: JwtStatus.Ok, payload };
        } catch (e) {
          return { status: mapError(e) };
        }
      };
      const res = await run();
      if (res.status === JwtStatus.KidAlgMismatch && (await jwks.refreshForUnknownKid(header.kid))) return run();
      return res;
    },
    onVerified(head, t, payload, metadata) {
      if (payloadInMetadata) metadata[payloadInMetadata] = payload;
      if (payloadHeader) {
        const seg = t.token.split('.')[1] ?? '';
        head.headers[payloadHeader] = pad ? seg.padEnd(seg.length + ((4 - (seg.length % 4)) % 4), '=') : seg;
      }
      for (const c of claimHeaders) {
        const v = claimValue(payload, c.claim);
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') head.headers[c.header] = String(v);
      }
      if (!forward) t.remove(head);
    },
  };
}
