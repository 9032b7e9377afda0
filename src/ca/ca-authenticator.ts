// Who is asking for a certificate. Authenticators are pluggable (Istio: JWT, client certificate,
// Kubernetes service-account tokens); each one either recognizes its credential and returns the
// caller's SPIFFE id, throws for a bad credential, or returns undefined to let the next one try.
import type tls from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import type { BootstrapTokens } from './ca-tokens.ts';
import { TokenError } from './ca-tokens.ts';
import { parseSpiffeId } from './spiffe.ts';

export interface CaCaller {
  /** The SPIFFE id the caller proved. */
  identity: string;
  authenticator: string;
}

/** What an authenticator may look at. */
export interface CaCallContext {
  metadata: grpc.Metadata;
  /** The client certificate, present only when TLS verified it against the CA's trust bundle. */
  peerCertificate?: tls.PeerCertificate;
}

export interface CaAuthenticator {
  readonly name: string;
  /** Returns the caller, undefined when the credential is not of this kind; throws AuthenticationError for a bad one. */
  authenticate(ctx: CaCallContext): Promise<CaCaller | undefined>;
}

export class AuthenticationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

/** The bearer token of an `authorization: Bearer <token>` metadata entry. */
export function bearerToken(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return m?.[1];
}

/** Authenticates local bootstrap tokens (rig token issue / rig up). */
export class BootstrapTokenAuthenticator implements CaAuthenticator {
  readonly name = 'bootstrap-token';
  private readonly tokens: BootstrapTokens;

  constructor(tokens: BootstrapTokens) {
    this.tokens = tokens;
  }

  async authenticate(ctx: CaCallContext): Promise<CaCaller | undefined> {
    const token = bearerToken(ctx.metadata);
    if (!token) return undefined;
    try {
      const v = await this.tokens.verify(token);
      return { identity: v.identity, authenticator: this.name };
    } catch (err) {
      if (err instanceof TokenError) throw new AuthenticationError(err.message);
      throw err;
    }
  }
}

/**
 * Authenticates a workload by the certificate it already holds (Istio's client-certificate
 * authenticator): a proxy renews over mutual TLS with its current, still valid certificate, so
 * renewals keep working after its bootstrap token has expired.
 */
export class ClientCertificateAuthenticator implements CaAuthenticator {
  readonly name = 'client-certificate';
  private readonly tokens: BootstrapTokens | undefined;

  /** With `tokens`, a certificate issued before a token for its identity was revoked cannot renew by itself. */
  constructor(tokens?: BootstrapTokens) {
    this.tokens = tokens;
  }

  async authenticate(ctx: CaCallContext): Promise<CaCaller | undefined> {
    const cert = ctx.peerCertificate;
    if (!cert?.subjectaltname) return undefined;
    const ids = cert.subjectaltname.split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
    const workload = ids.filter((id) => parseSpiffeId(id));
    if (workload.length !== 1) return undefined;
    const revokedAt = this.tokens?.identityRevokedAt(workload[0]!);
    if (revokedAt !== undefined && Date.parse(cert.valid_from) <= revokedAt) {
      // Fall through to the token: the workload must prove itself again.
      return undefined;
    }
    return { identity: workload[0]!, authenticator: this.name };
  }
}
