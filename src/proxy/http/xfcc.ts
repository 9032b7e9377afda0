// The x-forwarded-client-cert header as Envoy's connection manager writes it
// (forward_client_cert_details, set_current_client_cert_details). Modes:
//   SANITIZE             always removed;
//   FORWARD_ONLY         forwarded as received on a connection with a client certificate, else removed;
//   APPEND_FORWARD       with a client certificate, this proxy's element appended, else removed;
//   SANITIZE_SET         with a client certificate, replaced by this proxy's element, else removed;
//   ALWAYS_FORWARD_ONLY  always forwarded as received.
// This proxy's element: By=<each URI SAN of the local certificate>;Hash=<SHA-256 of the client
// certificate, hex>, then, as configured, Subject="<RFC 2253>", URI=<each URI SAN> (URI= when it has
// none), DNS=<each DNS SAN>, Cert="<URL-encoded PEM>", Chain="<URL-encoded PEM chain>" (the chain
// the client presented, leaf first, without the trust anchor: presentedClientChain says what Node
// lets us see of it). It is computed once per connection.
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Reader } from '../config/reader.ts';
import type { HeaderMap } from '../filters/filter.ts';
import { clientCertificate, presentedClientChain } from '../tls/downstream-tls.ts';

export const XfccMode = { Sanitize: 0, ForwardOnly: 1, AppendForward: 2, SanitizeSet: 3, AlwaysForwardOnly: 4 } as const;
export type XfccModeValue = (typeof XfccMode)[keyof typeof XfccMode];

const MODES: Record<string, XfccModeValue> = {
  SANITIZE: XfccMode.Sanitize,
  FORWARD_ONLY: XfccMode.ForwardOnly,
  APPEND_FORWARD: XfccMode.AppendForward,
  SANITIZE_SET: XfccMode.SanitizeSet,
  ALWAYS_FORWARD_ONLY: XfccMode.AlwaysForwardOnly,
};

export interface XfccConfig {
  readonly mode: XfccModeValue;
  readonly subject: boolean;
  readonly uri: boolean;
  readonly dns: boolean;
  readonly cert: boolean;
  readonly chain: boolean;
}

/** Reads forward_client_cert_details and set_current_client_cert_details of an HCM. */
export function readXfccConfig(r: Reader): XfccConfig {
  const name = r.str('forward_client_cert_details', 'SANITIZE');
  let mode = MODES[name];
  if (mode === undefined) {
    r.issues.error(r.at('forward_client_cert_details'), `unknown value ${name}; expected one of ${Object.keys(MODES).join(', ')}`);
    mode = XfccMode.Sanitize;
  }
  const d = r.obj('set_current_client_cert_details');
  const cfg = { mode, subject: d?.bool('subject', false) ?? false, uri: d?.bool('uri', false) ?? false, dns: d?.bool('dns', false) ?? false, cert: d?.bool('cert', false) ?? false, chain: d?.bool('chain', false) ?? false };
  d?.done();
  return cfg;
}

export function sans(subjectAltName: string | undefined, kind: 'URI' | 'DNS'): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  for (const part of subjectAltName.split(', ')) if (part.startsWith(kind + ':')) out.push(part.slice(kind.length + 1));
  return out;
}

/** A subject in RFC 2253 form (as OpenSSL's XN_FLAG_RFC2253): most specific RDN first, specials escaped. */
export function rfc2253(subject: string | undefined): string {
  // Node reports an empty subject (Istio's workload certificates have one) as undefined.
  if (!subject) return '';
  return subject
    .split('\n')
    .filter(Boolean)
    .reverse()
    .map((rdn) => {
      const i = rdn.indexOf('=');
      return rdn.slice(0, i + 1) + rdn.slice(i + 1).replace(/[,+"\\<>;]/g, '\\$&');
    })
    .join(',');
}

/**
 * This proxy's XFCC element for a TLS connection, or undefined when the client presented no
 * certificate. Only needed (and computed) for APPEND_FORWARD and SANITIZE_SET.
 */
export function clientCertElement(socket: TLSSocket, cfg: XfccConfig): string | undefined {
  const peer = clientCertificate(socket);
  if (!peer) return undefined;
  const parts: string[] = [];
  for (const uri of sans(socket.getX509Certificate()?.subjectAltName, 'URI')) parts.push('By=' + uri);
  parts.push('Hash=' + createHash('sha256').update(peer.raw).digest('hex'));
  if (cfg.subject) parts.push(`Subject="${rfc2253(peer.subject)}"`);
  if (cfg.uri) {
    const uris = sans(peer.subjectAltName, 'URI');
    if (uris.length) for (const u of uris) parts.push('URI=' + u);
    else parts.push('URI=');
  }
  if (cfg.dns) for (const d of sans(peer.subjectAltName, 'DNS')) parts.push('DNS=' + d);
  if (cfg.cert) parts.push(`Cert="${encodeURIComponent(peer.toString())}"`);
  if (cfg.chain) parts.push(`Chain="${encodeURIComponent(presentedClientChain(socket).map((c) => c.toString()).join(''))}"`);
  return parts.join(';');
}

/**
 * Applies the mode to a request's headers. `element`: this connection's element (APPEND_FORWARD,
 * SANITIZE_SET); `clientCert`: whether the connection presented a client certificate.
 */
export function applyXfcc(h: HeaderMap, mode: XfccModeValue, clientCert: boolean, element: string | undefined): void {
  if (mode === XfccMode.AlwaysForwardOnly) return;
  if (!clientCert || mode === XfccMode.Sanitize) {
    if (h['x-forwarded-client-cert'] !== undefined) delete h['x-forwarded-client-cert'];
    return;
  }
  if (mode === XfccMode.ForwardOnly || element === undefined) return;
  const prev = mode === XfccMode.AppendForward ? h['x-forwarded-client-cert'] : undefined;
  h['x-forwarded-client-cert'] = prev === undefined ? element : `${Array.isArray(prev) ? prev.join(',') : prev},${element}`;
}
