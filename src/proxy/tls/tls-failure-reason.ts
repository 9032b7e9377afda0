// Envoy's transport failure reason of a TLS connection (%DOWNSTREAM_TRANSPORT_FAILURE_REASON%):
// its SSL socket drains BoringSSL's error queue into
//   TLS_error:|<packed code>:<library>:OPENSSL_internal:<REASON>[:<validator details>]:TLS_error_end
// Node's OpenSSL errors carry the library and the reason's name (code ERR_SSL_<REASON>, the
// names BoringSSL uses for the same errors) but not the packed code, which is left out:
// "TLS_error:|SSL routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE:TLS_error_end".

const SSL_CODE = 'ERR_SSL_';
const SSL_LIBRARY = 'SSL routines';

function reason(library: string, name: string, details?: string): string {
  return `TLS_error:|${library}:OPENSSL_internal:${name}${details ? `:${details}` : ''}:TLS_error_end`;
}

/** The reason for an error OpenSSL raised on a TLS socket; undefined for other errors (a reset, a timeout). */
export function tlsErrorReason(err: Error & { code?: string; library?: string }): string | undefined {
  if (!err.code?.startsWith(SSL_CODE)) return undefined;
  return reason(err.library ?? SSL_LIBRARY, err.code.slice(SSL_CODE.length));
}

/**
 * The reason for a peer certificate refused by Envoy's default validator (BoringSSL's
 * CERTIFICATE_VERIFY_FAILED with the validator's details): `chainError`, the error of OpenSSL's
 * chain verification (e.g. "unable to verify the first certificate"; Envoy also names the depth,
 * which node does not give), else a SAN that matched no matcher.
 */
export function certificateVerifyFailed(chainError: Error | undefined): string {
  // Node appends a hint to some of OpenSSL's texts ("...; if the root CA is installed locally, ...").
  const details = chainError ? chainError.message.split('; ')[0] : 'SAN matcher';
  return reason(SSL_LIBRARY, 'CERTIFICATE_VERIFY_FAILED', `verify cert failed: ${details}`);
}
