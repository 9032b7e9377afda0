// Envoy's per-handshake dimension counters of a listener or cluster (<prefix>ssl.ciphers.<cipher>,
// ssl.versions.<version>, ssl.curves.<curve>, ssl.sigalgs.<algorithm>), counted once per completed
// handshake, named as BoringSSL names them for Envoy: ciphers by SSL_get_cipher_name
// (TLS_AES_128_GCM_SHA256, ECDHE-RSA-AES128-GCM-SHA256: OpenSSL's names are the same), versions
// TLSv1.2 / TLSv1.3, curves by SSL_get_curve_name (X25519, P-256, X25519MLKEM768), signature
// algorithms by SSL_get_signature_algorithm_name with the curve (ecdsa_secp256r1_sha256,
// rsa_pss_rsae_sha256, ed25519).
//
// What node:tls does not expose is found another way:
// - the key exchange group of a server connection (getEphemeralKeyInfo() is null on a server):
//   OpenSSL writes it into the session (SSL_SESSION's kex_group, [19] in its DER encoding), which
//   getSession() returns;
// - the peer's signature algorithm (SSL_get_peer_signature_nid is not exposed): it is derived from
//   the peer certificate's key and the negotiated version, as the algorithm an OpenSSL or BoringSSL
//   peer signs with under their default preferences (or the first of our signature_algorithms the
//   key can make); counted, as Envoy, only when the peer signed (a certificate, no resumption).
import type tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import type { Stat, Stats } from '../stats/stats.ts';

/** One counter per name under a prefix, made on first use (a handshake, never a request). */
class CounterFamily {
  private readonly counters = new Map<string, Stat>();
  private readonly stats: Stats;
  private readonly prefix: string;

  constructor(stats: Stats, prefix: string) {
    this.stats = stats;
    this.prefix = prefix;
  }

  inc(name: string): void {
    let c = this.counters.get(name);
    if (!c) this.counters.set(name, (c = this.stats.counter(this.prefix + name)));
    c.value++;
  }
}

export class TlsHandshakeDimensions {
  private readonly ciphers: CounterFamily;
  private readonly versions: CounterFamily;
  private readonly curves: CounterFamily;
  private readonly sigalgs: CounterFamily;

  /** `prefix`: e.g. "cluster.backend.ssl." */
  constructor(stats: Stats, prefix: string) {
    this.ciphers = new CounterFamily(stats, prefix + 'ciphers.');
    this.versions = new CounterFamily(stats, prefix + 'versions.');
    this.curves = new CounterFamily(stats, prefix + 'curves.');
    this.sigalgs = new CounterFamily(stats, prefix + 'sigalgs.');
  }

  /**
   * Counts a completed handshake of `socket`; `peer`: the certificate the peer presented in it,
   * `offeredSigalgs`: our tls_params.signature_algorithms (the peer signs with one of them).
   */
  count(socket: tls.TLSSocket, isServer: boolean, peer: tls.PeerCertificate | undefined, offeredSigalgs: readonly string[]): void {
    const version = socket.getProtocol();
    if (version) this.versions.inc(version);
    const cipher = socket.getCipher()?.name;
    if (cipher) this.ciphers.inc(cipher);
    const reused = socket.isSessionReused();
    // A resumed TLS 1.2 session exchanges no key (BoringSSL reports no curve); TLS 1.3 resumption does (psk_dhe_ke).
    if (!reused || version === 'TLSv1.3') {
      const curve = isServer ? serverCurve(socket) : clientCurve(socket);
      if (curve) this.curves.inc(curve);
    }
    if (peer?.raw && !reused) {
      const sigalg = peerSigalg(peer, version, offeredSigalgs);
      if (sigalg) this.sigalgs.inc(sigalg);
    }
  }
}

// OpenSSL's group names (getEphemeralKeyInfo) as BoringSSL's SSL_get_curve_name gives them.
const OPENSSL_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

// IANA TLS supported group ids (SSL_SESSION kex_group) by BoringSSL's name.
const GROUP_NAMES: Record<number, string> = {
  23: 'P-256', 24: 'P-384', 25: 'P-521', 29: 'X25519', 30: 'X448',
  0x11eb: 'SecP256r1MLKEM768', 0x11ec: 'X25519MLKEM768', 0x11ed: 'SecP384r1MLKEM1024',
};

function clientCurve(socket: tls.TLSSocket): string | undefined {
  const name = (socket.getEphemeralKeyInfo() as tls.EphemeralKeyInfo | null)?.name;
  return name ? (OPENSSL_CURVES[name] ?? name) : undefined;
}

function serverCurve(socket: tls.TLSSocket): string | undefined {
  const session = socket.getSession();
  const id = session && sessionKexGroup(session);
  return id ? (GROUP_NAMES[id] ?? 'unknown_ssl_curve') : undefined;
}

/** OpenSSL's SSL_SESSION DER: SEQUENCE { ..., kex_group [19] EXPLICIT INTEGER, ... }. */
const KEX_GROUP_TAG = 19;
const CONTEXT_SPECIFIC = 3;

export function sessionKexGroup(der: Buffer): number | undefined {
  const { offset, result } = asn1js.fromBER(der);
  if (offset === -1 || !(result instanceof asn1js.Sequence)) return undefined;
  const field = result.valueBlock.value.find((v) => v.idBlock.tagClass === CONTEXT_SPECIFIC && v.idBlock.tagNumber === KEX_GROUP_TAG);
  const value = (field as asn1js.Constructed | undefined)?.valueBlock.value[0];
  return value instanceof asn1js.Integer ? value.valueBlock.valueDec : undefined;
}

// The signature algorithms a key can make, in the order OpenSSL and BoringSSL prefer them.
const ECDSA_TLS13: Record<string, string> = { 'P-256': 'ecdsa_secp256r1_sha256', 'P-384': 'ecdsa_secp384r1_sha384', 'P-521': 'ecdsa_secp521r1_sha512' };

function keyAlgorithms(peer: tls.PeerCertificate, version: string | null): readonly string[] {
  const tls13 = version === 'TLSv1.3';
  if (peer.nistCurve) {
    // TLS 1.3 binds the curve to the hash; TLS 1.2's ecdsa_*_sha* take any curve.
    const bound = ECDSA_TLS13[peer.nistCurve];
    return tls13 ? (bound ? [bound] : []) : ['ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ecdsa_secp521r1_sha512'];
  }
  const type = new X509Certificate(peer.raw).publicKey.asymmetricKeyType;
  if (type === 'rsa') return tls13 ? ['rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384', 'rsa_pss_rsae_sha512'] : ['rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384', 'rsa_pss_rsae_sha512', 'rsa_pkcs1_sha256', 'rsa_pkcs1_sha384', 'rsa_pkcs1_sha512'];
  if (type === 'rsa-pss') return ['rsa_pss_pss_sha256', 'rsa_pss_pss_sha384', 'rsa_pss_pss_sha512'];
  if (type === 'ed25519' || type === 'ed448') return [type];
  return [];
}

function peerSigalg(peer: tls.PeerCertificate, version: string | null, offered: readonly string[]): string | undefined {
  const usable = keyAlgorithms(peer, version);
  if (offered.length) {
    const chosen = offered.find((a) => usable.includes(a));
    if (chosen) return chosen;
  }
  return usable[0];
}
