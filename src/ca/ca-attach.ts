// Attaches the CA to the control plane: loads or creates it in the state directory, adds the
// certificate service (client-certificate, then bootstrap-token authentication) to the control
// plane's gRPC server, and serves that server over TLS on :15012 with the CA-signed serving
// certificate.
import type * as grpc from '@grpc/grpc-js';
import type { CaAuthenticator } from './ca-authenticator.ts';
import { BootstrapTokenAuthenticator, ClientCertificateAuthenticator } from './ca-authenticator.ts';
import { createCertificateAuthority, type CertificateAuthority, type CertificateAuthorityOptions } from './ca.ts';
import { addCaService, authenticate } from './ca-service.ts';
import { takeTlsStamp } from './ca-transport-mark.ts';
import type { XdsAuthenticator } from '../xds/server/xds-identity.ts';
import { BootstrapTokens } from './ca-tokens.ts';

export interface CaAttachTarget {
  grpcServer: grpc.Server;
  bindTls(port: number, credentials: grpc.ServerCredentials): Promise<number>;
  /** The control plane's discovery server: its ADS streams over TLS are authenticated as the CA's callers (Istio's xDS authentication). */
  discovery?: { setAuthenticator(authenticate: XdsAuthenticator): void };
}

export interface CaAttachOptions extends CertificateAuthorityOptions {
  /** The TLS port (Istio: 15012; 0 picks a free one). */
  tlsPort?: number;
  /** Extra authenticators tried after the bootstrap tokens (e.g. Kubernetes service-account tokens). */
  authenticators?: CaAuthenticator[];
}

export interface AttachedCa {
  ca: CertificateAuthority;
  tokens: BootstrapTokens;
  tlsPort: number;
}

export async function attachCertificateAuthority(target: CaAttachTarget, opts: CaAttachOptions): Promise<AttachedCa> {
  const ca = await createCertificateAuthority(opts);
  const tokens = new BootstrapTokens(opts.stateDir);
  const authenticators = [new ClientCertificateAuthenticator(tokens), new BootstrapTokenAuthenticator(tokens), ...(opts.authenticators ?? [])];
  addCaService(target.grpcServer, ca, authenticators, { log: opts.log });
  target.discovery?.setAuthenticator(async (metadata, peerCertificate) => {
    // A plaintext stream is not authenticated (Istio's 15010); one over TLS must prove who it is.
    if (!takeTlsStamp(metadata)) return undefined;
    return [(await authenticate(authenticators, { metadata, peerCertificate })).identity];
  });
  try {
    const tlsPort = await target.bindTls(opts.tlsPort ?? 15012, ca.serverCredentials());
    return { ca, tokens, tlsPort };
  } catch (err) {
    ca.close();
    throw err;
  }
}
