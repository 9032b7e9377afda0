// istio.v1.auth.IstioCertificateService/CreateCertificate on the control plane's gRPC server:
// authenticate the caller, then sign its CSR for exactly that identity.
import * as grpc from '@grpc/grpc-js';
import { silentLogger, type Logger } from '../core/log.ts';
import { AuthenticationError, type CaAuthenticator, type CaCaller } from './ca-authenticator.ts';
import { CaError, type CertificateAuthority } from './ca.ts';
import { certificateServiceDefinition, type IstioCertificateRequest, type IstioCertificateResponse } from './ca-proto.ts';

async function authenticate(authenticators: readonly CaAuthenticator[], metadata: grpc.Metadata): Promise<CaCaller> {
  for (const a of authenticators) {
    const caller = await a.authenticate(metadata);
    if (caller) return caller;
  }
  throw new AuthenticationError(`no credential: send "authorization: Bearer <token>" (accepted: ${authenticators.map((a) => a.name).join(', ') || 'none configured'})`);
}

/** Adds the certificate service to a gRPC server (the control plane's :15012 TLS server). */
export function addCaService(server: grpc.Server, ca: CertificateAuthority, authenticators: readonly CaAuthenticator[], log: Logger = silentLogger): void {
  const createCertificate: grpc.handleUnaryCall<IstioCertificateRequest, IstioCertificateResponse> = (call, callback) => {
    const peer = call.getPeer();
    authenticate(authenticators, call.metadata)
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
