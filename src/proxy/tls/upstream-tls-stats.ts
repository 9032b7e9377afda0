// Envoy's TLS stats of a cluster with a TLS transport socket (cluster.<name>.ssl.*, all counters),
// counted on each upstream TLS connection: a completed handshake (with session_reused,
// no_certificate and the ciphers/versions/curves/sigalgs dimensions), or the way it failed; with
// trust_chain_verification ACCEPT_UNTRUSTED a failed verification is counted and the handshake completes. connection_error counts TLS failures other than a
// failed certificate verification; TCP errors and timeouts are not TLS failures. A listener with
// TLS chains has the same set (listener.<prefix>.ssl.*), counted by downstream-tls.ts.
import type tls from 'node:tls';
import type { Stat, Stats } from '../stats/stats.ts';
import { SAN_MISMATCH, upstreamPeerCertificate, type TlsContext } from './tls-context.ts';
import { TlsHandshakeDimensions } from './tls-handshake-dimensions.ts';

export interface SslStats {
  readonly handshake: Stat;
  readonly connectionError: Stat;
  readonly sessionReused: Stat;
  readonly noCertificate: Stat;
  readonly failVerifyNoCert: Stat;
  readonly failVerifyError: Stat;
  readonly failVerifySan: Stat;
  /** ssl.ciphers.*, ssl.versions.*, ssl.curves.*, ssl.sigalgs.* */
  readonly dimensions: TlsHandshakeDimensions;
}

/** The counters under `prefix` (e.g. "cluster.backend.ssl."): looked up once per cluster or listener. */
export function sslStats(stats: Stats, prefix: string): SslStats {
  return {
    handshake: stats.counter(prefix + 'handshake'),
    connectionError: stats.counter(prefix + 'connection_error'),
    sessionReused: stats.counter(prefix + 'session_reused'),
    noCertificate: stats.counter(prefix + 'no_certificate'),
    failVerifyNoCert: stats.counter(prefix + 'fail_verify_no_cert'),
    failVerifyError: stats.counter(prefix + 'fail_verify_error'),
    failVerifySan: stats.counter(prefix + 'fail_verify_san'),
    dimensions: new TlsHandshakeDimensions(stats, prefix),
  };
}

// OpenSSL's X509 verification results as Node names them (the error of a rejected peer chain).
const CA_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED', 'INVALID_CA',
  'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH',
]);

/** An error of OpenSSL's verification of the peer's certificate chain (node's code for it). */
export function isChainVerifyError(err: Error & { code?: string }): boolean {
  return err.code !== undefined && CA_VERIFY_CODES.has(err.code);
}

function failureStat(err: Error & { code?: string; library?: string }, s: SslStats): Stat | undefined {
  if (err.code === SAN_MISMATCH) return s.failVerifySan;
  if (isChainVerifyError(err)) return s.failVerifyError;
  // OpenSSL's own errors (an alert, no common protocol or cipher) carry its library name.
  if (err.library || err.code?.startsWith('ERR_SSL_')) return s.connectionError;
  return undefined;
}

/** Counts the handshake of a new upstream TLS connection made with `ctx`, or its failure. */
export function countUpstreamTls(socket: tls.TLSSocket, s: SslStats, ctx: TlsContext): void {
  const failed = (err: Error): void => {
    const stat = failureStat(err, s);
    if (stat) stat.value++;
  };
  socket.once('error', failed);
  socket.once('secureConnect', () => {
    socket.off('error', failed);
    // ACCEPT_UNTRUSTED: node completed the handshake with the failed verification's code as
    // authorizationError (a string at run time, not the Error its type says).
    if (!socket.authorized && ctx.verifiesPeer && ctx.acceptUntrusted) ((socket.authorizationError as unknown) === SAN_MISMATCH ? s.failVerifySan : s.failVerifyError).value++;
    s.handshake.value++;
    if (socket.isSessionReused()) s.sessionReused.value++;
    const peer = upstreamPeerCertificate(socket);
    if (!peer) s.noCertificate.value++;
    s.dimensions.count(socket, false, peer, ctx.offeredSigalgs);
  });
}
