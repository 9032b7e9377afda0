// The server side of a filter chain's DownstreamTlsContext on an accepted connection: the
// TLSSocket's verify mode, the verdict on the client certificate, and Envoy's
// listener.<stat_prefix>.ssl.* counters (the cluster's set, upstream-tls-stats.ts).
//
// A required client certificate that is missing fails inside the handshake, as with Envoy:
// node's rejectUnauthorized on a server socket is OpenSSL's SSL_VERIFY_FAIL_IF_NO_PEER_CERT, so
// OpenSSL sends the alert BoringSSL sends (TLS 1.3: certificate_required; TLS 1.2:
// handshake_failure) and the client reports it. A presented certificate is judged after the
// handshake: node's OpenSSL verify callback accepts every chain and only keeps the result for
// verifyError(), and node offers no hook to fail the handshake from JavaScript; so an untrusted
// chain or a SAN mismatch closes the connection without the alert Envoy sends (unknown_ca,
// certificate_unknown), counted as Envoy counts it.
import type net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { TlsContext } from './tls-context.ts';
import type { SslStats } from './upstream-tls-stats.ts';
import { certificateVerifyFailed } from './tls-failure-reason.ts';

/** OpenSSL's reason when a client sent no certificate where one is required. */
const NO_PEER_CERT = 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE';

/**
 * Starts TLS on `socket` for `ctx`, counting a handshake that fails inside OpenSSL
 * (fail_verify_no_cert, or connection_error); `alpn`: the protocols to select from, if any.
 */
export function serverTlsSocket(socket: net.Socket, ctx: TlsContext, secureContext: tls.SecureContext, alpn: string[] | undefined, ssl: SslStats): tls.TLSSocket {
  const ts = new tls.TLSSocket(socket, {
    isServer: true,
    secureContext,
    ALPNProtocols: alpn,
    requestCert: ctx.requireClientCert || ctx.verifiesPeer,
    rejectUnauthorized: ctx.requireClientCert,
  });
  const failed = (err: Error & { code?: string; library?: string }): void => {
    if (err.code === NO_PEER_CERT) ssl.failVerifyNoCert.value++;
    else if (err.library || err.code?.startsWith('ERR_SSL_')) ssl.connectionError.value++;
  };
  ts.once('error', failed);
  ts.once('secure', () => ts.off('error', failed));
  CONTEXTS.set(ts, ctx);
  return ts;
}

/**
 * The verdict on a completed handshake's client certificate (`cert`, undefined when none was
 * presented): why the connection is refused (its transport failure reason), or undefined to
 * accept it, counted as Envoy's default certificate validator counts: a chain the trust bundle
 * does not verify is fail_verify_error (and refused, unless trust_chain_verification is
 * ACCEPT_UNTRUSTED), SANs that match none of the matchers fail_verify_san (refused likewise); an
 * accepted connection counts
 * handshake, session_reused, no_certificate and the handshake's dimensions (cipher, version, ...).
 */
export function clientCertificateVerdict(ts: tls.TLSSocket, ctx: TlsContext, cert: tls.PeerCertificate | undefined, ssl: SslStats): string | undefined {
  if (cert) {
    // A TLSSocket made outside tls.Server never sets `authorized`; ask the handle as tls.Server does.
    const verifyError = ctx.verifiesPeer ? (ts as unknown as { _handle?: { verifyError(): Error | null } })._handle?.verifyError() : undefined;
    if (verifyError) {
      ssl.failVerifyError.value++;
      if (!ctx.acceptUntrusted) return certificateVerifyFailed(verifyError);
    } else if (ctx.checkPeer(cert)) {
      ssl.failVerifySan.value++;
      if (!ctx.acceptUntrusted) return certificateVerifyFailed(undefined);
    }
  }
  ssl.handshake.value++;
  if (ts.isSessionReused()) ssl.sessionReused.value++;
  if (!cert) ssl.noCertificate.value++;
  ssl.dimensions.count(ts, true, cert, ctx.offeredSigalgs);
  return undefined;
}

/** The TLS context each downstream TLS socket was accepted with (for presentedClientChain). */
const CONTEXTS = new WeakMap<tls.TLSSocket, TlsContext>();

/**
 * The client's certificate chain as Envoy reports it (XFCC Chain, BoringSSL's peer chain): the
 * certificates the client sent, leaf first, without the trust anchor the verifier found. Node's
 * detailed peer certificate links the leaf to its issuers among the certificates the client sent,
 * then in this context's trust bundle: the walk stops at the first certificate of the trust bundle
 * (so a trust anchor the client sent itself is left out too, which Envoy would list).
 * Node 24's getPeerX509Certificate() shifts the sent certificates out of OpenSSL's peer chain (a
 * second call, or this walk after it, sees the leaf alone): nothing may call it on a downstream
 * TLS socket; clientCertificate() gives the leaf.
 */
export function presentedClientChain(ts: tls.TLSSocket): X509Certificate[] {
  const anchors = CONTEXTS.get(ts)?.trustAnchors();
  const out: X509Certificate[] = [];
  const seen = new Set<tls.PeerCertificate>();
  for (let c: tls.DetailedPeerCertificate | undefined = ts.getPeerCertificate(true); c?.raw && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    const cert = new X509Certificate(c.raw);
    if (out.length && anchors?.has(cert.fingerprint256)) break;
    out.push(cert);
  }
  return out;
}

/** The client's certificate, or undefined (getPeerCertificate's DER: see presentedClientChain). */
export function clientCertificate(ts: tls.TLSSocket): X509Certificate | undefined {
  const raw = ts.getPeerCertificate()?.raw;
  return raw ? new X509Certificate(raw) : undefined;
}
