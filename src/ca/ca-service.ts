// istio.v1.auth.IstioCertificateService/CreateCertificate on the control plane's gRPC server:
// authenticate the caller, then sign its CSR for exactly that identity.
import * as grpc from '@grpc/grpc-js';
import { silentLogger, type Logger } from '../core/log.ts';
import { AuthenticationError, type CaAuthenticator, type CaCallContext, type CaCaller } from './ca-authenticator.ts';
import { CaError, type CertificateAuthority } from './ca.ts';
import { takeTlsStamp } from './ca-transport-mark.ts';
import { certificateServiceDefinition, type IstioCertificateRequest, type IstioCertificateResponse } from './ca-proto.ts';

/** The caller proved by the first authenticator that recognizes its credential; throws AuthenticationError when none does. */
export async function authenticate(authenticators: readonly CaAuthenticator[], ctx: CaCallContext): Promise<CaCaller> {
  for (const a of authenticators) {
    const caller = await a.authenticate(ctx);
    if (caller) return caller;
  }
  throw new AuthenticationError(`no credential: send "authorization: Bearer <token>" (accepted: ${authenticators.map((a) => a.name).join(', ') || 'none configured'})`);
}

export interface CaServiceOptions {
  log?: Logger;
  /** Refuse requests that did not come through `ca.serverCredentials()` (default true: bearer tokens never travel in clear). */
  requireTls?: boolean;
}

/**
 * Adds the certificate service to a gRPC server. When the server also listens in plaintext (the
 * control plane's 15010), requests there are refused: the CA answers on the TLS port (15012) only.
 */
export function addCaService(server: grpc.Server, ca: CertificateAuthority, authenticators: readonly CaAuthenticator[], opts: CaServiceOptions = {}): void {
  const log = opts.log ?? silentLogger;
  const requireTls = opts.requireTls ?? true;
  const createCertificate: grpc.handleUnaryCall<IstioCertificateRequest, IstioCertificateResponse> = (call, callback) => {
    const peer = call.getPeer();
    if (!takeTlsStamp(call.metadata) && requireTls) {
      callback({ code: grpc.status.UNAUTHENTICATED, details: 'the CA signs only over TLS: connect to the control plane TLS port (15012)' });
      return;
    }
    authenticate(authenticators, { metadata: call.metadata, peerCertificate: call.getAuthContext().sslPeerCertificate })
      .then((caller) => ca.sign({ csrPem: call.request.csr, identity: caller.identity, ttlSeconds: Number(call.request.validity_duration) || undefined }))
      .then((chain) => callback(null, { cert_chain: chain }))
      .catch((err: unknown) => {
        if (err instanceof AuthenticationError) {
          log.warn({ peer, reason: err.message }, 'certificate request refused: not authenticated');
          callback({ code: grpc.status.UNAUTHENTICATED, details: err.message });
        } else if (err instanceof CaError) {
          log.warn({ peer, reason: err.message }, 'certificate request refused');
          callback({ code: err.grpcCode, details: err.message });
        } else {
          log.error({ peer, err }, 'certificate request failed');
          callback({ code: grpc.status.INTERNAL, details: `the CA failed to sign: ${(err as Error).message}` });
        }
      });
  };
  server.addService(certificateServiceDefinition(), { CreateCertificate: createCertificate });
}
