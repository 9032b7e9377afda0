// Envoy's transport failure reason of an upstream connection that failed
// (%UPSTREAM_TRANSPORT_FAILURE_REASON%, and the local reply's "transport failure reason: ..."):
// a TLS failure in the SSL socket's shape (tls-failure-reason.ts); a server certificate refused by
// the chain check or by the SAN matchers as CERTIFICATE_VERIFY_FAILED with the validator's
// details; a TLS context still waiting for its SDS secret as Envoy's not-ready socket words it;
// a refused TCP connect as the connection's "delayed connect error: <strerror>". Other errors
// keep node's message.
import { isIP } from 'node:net';
import { SAN_MISMATCH, SECRET_NOT_READY } from '../tls/tls-context.ts';
import { certificateVerifyFailed, tlsErrorReason } from '../tls/tls-failure-reason.ts';
import { isChainVerifyError } from '../tls/upstream-tls-stats.ts';

type SystemError = Error & { code?: string; syscall?: string; address?: string };

export function transportFailureReason(err: SystemError): string {
  if (err.code === SECRET_NOT_READY) return 'TLS error: Secret is not supplied by SDS';
  if (err.code === SAN_MISMATCH) return certificateVerifyFailed(undefined);
  if (isChainVerifyError(err)) return certificateVerifyFailed(err);
  const tls = tlsErrorReason(err);
  if (tls) return tls;
  // A non-blocking connect to an IP learns the refusal from SO_ERROR (a pipe's connect fails at once, worded otherwise).
  if (err.code === 'ECONNREFUSED' && err.syscall === 'connect' && err.address && isIP(err.address)) return 'delayed connect error: Connection refused';
  return err.message;
}
