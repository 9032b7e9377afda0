// Who is asking for a certificate. Authenticators are pluggable (Istio: JWT, client certificate,
// Kubernetes service-account tokens); each one either recognizes its credential and returns the
// caller's SPIFFE id, throws for a bad credential, or returns undefined to let the next one try.
import type * as grpc from '@grpc/grpc-js';
import type { BootstrapTokens } from './ca-tokens.ts';
import { TokenError } from './ca-tokens.ts';

export interface CaCaller {
  /** The SPIFFE id the caller proved. */
  identity: string;
  authenticator: string;
}

export interface CaAuthenticator {
  readonly name: string;
  /** Returns the caller, undefined when the credential is not of this kind; throws AuthenticationError for a bad one. */
  authenticate(metadata: grpc.Metadata): Promise<CaCaller | undefined>;
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

  async authenticate(metadata: grpc.Metadata): Promise<CaCaller | undefined> {
    const token = bearerToken(metadata);
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
