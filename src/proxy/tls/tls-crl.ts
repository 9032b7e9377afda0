// CertificateValidationContext.crl: certificate revocation lists for a TLS context's peer
// verification, read with the config (a validation context's or a validation secret's).
import tls from 'node:tls';
import type { Reader } from '../config/reader.ts';
import { readDataSource } from '../config/data-source.ts';

const PEM_CRL = /-----BEGIN X509 CRL-----[^-]+-----END X509 CRL-----/g;

/**
 * A validation context's crl (and only_verify_leaf_cert_crl): the PEM CRLs it holds, each checked
 * by OpenSSL now, so that a file that is missing, holds no CRL or a broken one is refused with the
 * config (Envoy: "Failed to load CRL from ...") rather than failing every handshake later.
 */
export function readCrls(v: Reader): string[] {
  const text = readDataSource(v.obj('crl'));
  if (v.bool('only_verify_leaf_cert_crl', false)) {
    v.issues.warn(v.at('only_verify_leaf_cert_crl'), 'node:tls checks every certificate of the chain against the CRLs (Envoy\'s default); a chain whose intermediate CA has no CRL is refused');
  }
  if (text === undefined) return [];
  const crls = text.match(PEM_CRL) ?? [];
  if (!crls.length) {
    v.issues.error(v.at('crl'), 'no CRL in it: a PEM X509 CRL (-----BEGIN X509 CRL-----) is expected');
    return [];
  }
  try {
    tls.createSecureContext({ crl: crls });
  } catch (e) {
    v.issues.error(v.at('crl'), `cannot load the CRL: ${(e as Error).message}`);
    return [];
  }
  return crls;
}
