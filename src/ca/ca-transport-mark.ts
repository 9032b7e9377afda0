// Knowing, inside a handler, that a call came over the TLS port. grpc-js shares services across
// all of a server's ports (the control plane's plaintext 15010 and TLS 15012) and reports TLS in
// getAuthContext() only for client-certificate connections, so the TLS port's credentials carry
// an interceptor that stamps each call's metadata with a per-process secret; the handler checks
// (and removes) it. A client cannot forge the stamp on the plaintext port.
import crypto from 'node:crypto';
import * as grpc from '@grpc/grpc-js';

const KEY = 'x-rig-ca-transport';
const SECRET = crypto.randomBytes(24).toString('base64url');

const stampTls: grpc.ServerInterceptor = (_method, call) =>
  new grpc.ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMetadata: (metadata, mdNext) => {
          metadata.set(KEY, SECRET);
          mdNext(metadata);
        },
      }),
  });

/** Wraps TLS server credentials so that calls on that port are known to be TLS. */
export function withTlsStamp(credentials: grpc.ServerCredentials): grpc.ServerCredentials {
  return grpc.experimental.createServerCredentialsWithInterceptors(credentials, [stampTls]);
}

/** Whether the call came through credentials made by withTlsStamp; removes the stamp. */
export function takeTlsStamp(metadata: grpc.Metadata): boolean {
  const stamped = metadata.get(KEY)[0] === SECRET;
  metadata.remove(KEY);
  return stamped;
}
