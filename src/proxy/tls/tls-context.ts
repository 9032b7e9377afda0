// DownstreamTlsContext / UpstreamTlsContext compiled once: certificates inline or from SDS secrets
// by name, trust bundle, SAN matchers (match_typed_subject_alt_names, for SPIFFE URIs), ALPN, TLS
// versions, SNI, require_client_certificate, session resumption. The node:tls SecureContext is
// built lazily and rebuilt when the secret store changes, so rotation applies to new connections
// only; a rebuilt context has new ticket keys and an empty client session cache, so no session
// made under the old certificates or trust bundle is resumed.
import type net from 'node:net';
import tls from 'node:tls';
import { constants, randomBytes, X509Certificate } from 'node:crypto';
import type { Reader } from '../config/reader.ts';
import { LOCAL_SECRETS } from '../xds-client/xds-dependencies.ts';
import { readDataSource } from '../config/data-source.ts';
import type { SecretStore } from './secrets.ts';
import { readSanMatchers, type SanMatcher } from './tls-san.ts';
import { readCrls } from './tls-crl.ts';
import { TlsSessionCache } from './tls-session-cache.ts';

/**
 * Envoy's default TLS 1.2 cipher suites (ECDHE with AEAD only; TLS 1.3 suites are all AEAD), used
 * when tls_params.cipher_suites is not set.
 */
const DEFAULT_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384';
/**
 * TLS 1.3 suites in the order BoringSSL offers them on a CPU with AES instructions, as Envoy does
 * (its cipher_suites apply to TLS 1.2 and below only). OpenSSL's own order puts AES-256 first, so
 * two rig proxies negotiated TLS_AES_256_GCM_SHA384 where two Envoys use AES-128.
 */
const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

const VERSIONS: Record<string, tls.SecureVersion | undefined> = { TLS_AUTO: undefined, TLSv1_0: 'TLSv1', TLSv1_1: 'TLSv1.1', TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3' };

/**
 * The secret name of an SdsSecretConfig. The xDS client subscribes the secrets whose source is ADS;
 * `default` and `ROOTCA` are the proxy's own; a secret from any other source is never fetched.
 */
function sdsSecretName(s: Reader): string {
  const name = s.str('name');
  const src = s.obj('sds_config');
  if (src && !src.has('ads') && !LOCAL_SECRETS.has(name)) {
    s.issues.warn(s.at('sds_config'), `only ADS is supported as a secret source (rig proxy makes ${[...LOCAL_SECRETS].join(' and ')} itself): secret "${name}" must come from the bootstrap's static secrets`);
  }
  s.accept('sds_config');
  s.done();
  return name;
}

export class TlsContext {
  readonly alpn: readonly string[];
  readonly sni: string | undefined;
  readonly requireClientCert: boolean;
  /**
   * trust_chain_verification ACCEPT_UNTRUSTED: a peer chain the trust bundle does not verify, or
   * SANs that match none of the matchers, are counted (fail_verify_error, fail_verify_san) and the
   * connection is used, as Envoy's allow_untrusted_certificate (downstream-tls.ts, upstream-tls-stats.ts).
   */
  readonly acceptUntrusted: boolean;
  private certSecret?: string;
  private caSecret?: string;
  private inlineCert?: string;
  private inlineKey?: string;
  private inlineCa?: string;
  /** validation_context.crl: its CRLs (PEM blocks), every one loaded, as Envoy does. */
  private crls: string[] = [];
  private readonly sans: SanMatcher[];
  private minVersion?: tls.SecureVersion;
  private maxVersion?: tls.SecureVersion;
  private ciphers?: string;
  private ecdhCurve?: string;
  private sigalgs?: string;
  /** tls_params.signature_algorithms: the peer signs with one of them (empty: the library's defaults). */
  readonly offeredSigalgs: readonly string[];
  /** SAN matchers of the validation secret, as of the current SecureContext. */
  private secretSans: readonly SanMatcher[] = [];
  private cached?: tls.SecureContext;
  private cachedVersion = -1;
  /** The trust bundle of the current SecureContext, and its certificates' SHA-256 fingerprints once asked for. */
  private caPems: readonly string[] = [];
  private anchors?: ReadonlySet<string>;
  /** Server: session_timeout (seconds) and disable_stateless_session_resumption (no tickets). */
  private sessionTimeout?: number;
  private noTickets = false;
  /** Server: OpenSSL refuses to resume a session of a context without one when it verifies peers. */
  private readonly sessionIdContext = randomBytes(16).toString('hex');
  /** Client: up to max_session_keys sessions per host for resumption (Envoy's default 1; none with 0). */
  private readonly sessions: TlsSessionCache | undefined;
  readonly isServer: boolean;

  constructor(r: Reader, isServer: boolean) {
    this.isServer = isServer;
    const c = r.obj('common_tls_context') ?? (r.path ? undefined : undefined);
    this.requireClientCert = isServer ? r.bool('require_client_certificate', false) : false;
    this.sni = isServer ? undefined : r.str('sni') || undefined;
    if (isServer) {
      this.sessionTimeout = r.has('session_timeout') ? Math.max(1, Math.round(r.durationMs('session_timeout', 0) / 1000)) : undefined;
      this.noTickets = r.bool('disable_stateless_session_resumption', false);
      // Stateful (session id) resumption needs a server-side session store, which node:tls only
      // keeps inside a tls.Server: without tickets there is no resumption, as with this flag.
      r.accept('disable_stateful_session_resumption');
    }
    if (!isServer) {
      const keys = r.num('max_session_keys', 1);
      if (keys > 0) this.sessions = new TlsSessionCache(keys);
      // node:tls (OpenSSL) clients accept a server's TLS 1.2 renegotiation, which is what true
      // allows; false (the default) cannot be enforced, and TLS 1.3 has no renegotiation at all.
      r.accept('allow_renegotiation');
    }
    const sans: SanMatcher[] = [];
    let alpn: string[] = [];
    let acceptUntrusted = false;
    let offeredSigalgs: string[] = [];
    if (c) {
      alpn = c.strs('alpn_protocols');
      const p = c.obj('tls_params');
      if (p) {
        this.minVersion = VERSIONS[p.str('tls_minimum_protocol_version', 'TLS_AUTO')];
        this.maxVersion = VERSIONS[p.str('tls_maximum_protocol_version', 'TLS_AUTO')];
        // Envoy (BoringSSL) writes equal-preference groups as [A|B]; OpenSSL takes the plain list.
        const cs = p.strs('cipher_suites').flatMap((c) => c.replace(/^\[|\]$/g, '').split('|'));
        if (cs.length) this.ciphers = cs.join(':');
        if (this.ciphers) {
          try {
            tls.createSecureContext({ ciphers: this.ciphers });
          } catch (e) {
            p.issues.error(p.at('cipher_suites'), `cipher_suites [${cs.join(', ')}]: ${(e as Error).message}; use OpenSSL names such as ECDHE-RSA-AES128-GCM-SHA256`);
          }
        }
        const curves = p.strs('ecdh_curves');
        if (curves.length) this.ecdhCurve = secureOption(p, 'ecdh_curves', { ecdhCurve: curves.join(':') }, 'use names such as X25519, P-256, P-384');
        const sigalgs = p.strs('signature_algorithms');
        if (sigalgs.length) this.sigalgs = secureOption(p, 'signature_algorithms', { sigalgs: sigalgs.join(':') }, 'use names such as ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256');
        if (this.sigalgs) offeredSigalgs = sigalgs;
        p.done();
      }
      const certs = c.objs('tls_certificates');
      if (certs.length > 1) c.issues.warn(c.at('tls_certificates'), 'only the first certificate is used');
      if (certs[0]) {
        this.inlineCert = readDataSource(certs[0].obj('certificate_chain'));
        this.inlineKey = readDataSource(certs[0].obj('private_key'));
        certs[0].done();
      }
      for (const s of c.objs('tls_certificate_sds_secret_configs')) this.certSecret = sdsSecretName(s);
      const readValidation = (v: Reader) => {
        this.inlineCa = readDataSource(v.obj('trusted_ca'));
        this.crls = readCrls(v);
        sans.push(...readSanMatchers(v));
        const trust = v.str('trust_chain_verification', 'VERIFY_TRUST_CHAIN');
        if (trust === 'ACCEPT_UNTRUSTED') acceptUntrusted = true;
        else if (trust !== 'VERIFY_TRUST_CHAIN') v.issues.error(v.at('trust_chain_verification'), `unknown value ${trust}: use VERIFY_TRUST_CHAIN or ACCEPT_UNTRUSTED`);
        v.done();
      };
      const vc = c.obj('validation_context');
      if (vc) readValidation(vc);
      const vs = c.obj('validation_context_sds_secret_config');
      if (vs) this.caSecret = sdsSecretName(vs);
      const cvc = c.obj('combined_validation_context');
      if (cvc) {
        const d = cvc.obj('default_validation_context');
        if (d) readValidation(d);
        const s = cvc.obj('validation_context_sds_secret_config');
        if (s) this.caSecret = sdsSecretName(s);
        cvc.done();
      }
      c.done();
    }
    r.done();
    this.alpn = alpn;
    this.sans = sans;
    this.acceptUntrusted = acceptUntrusted;
    this.offeredSigalgs = offeredSigalgs;
    if (isServer && !this.inlineCert && !this.certSecret) r.issues.error(r.path, 'a DownstreamTlsContext needs a certificate (tls_certificates or tls_certificate_sds_secret_configs)');
    if (this.requireClientCert && !this.inlineCa && !this.caSecret) r.issues.error(r.at('require_client_certificate'), 'requires a validation context (trusted CA) to verify client certificates');
    // Envoy: "Failed to load CRL from <crl> without trusted CA".
    if (this.crls.length && !this.inlineCa && !this.caSecret) r.issues.error(r.path, 'a validation context with a crl needs a trusted CA (trusted_ca or a validation context secret): a CRL only applies to a verified chain');
  }

  /** Secret names this context needs that the store does not have yet (the listener/cluster is not ready). */
  missingSecrets(store: SecretStore): string[] {
    const out: string[] = [];
    if (this.certSecret && !store.get(this.certSecret)?.certChain) out.push(this.certSecret);
    if (this.caSecret && !store.get(this.caSecret)?.trustedCa) out.push(this.caSecret);
    return out;
  }

  get verifiesPeer(): boolean {
    return Boolean(this.inlineCa || this.caSecret);
  }

  /** Client: a peer that fails verification is refused in the handshake (node's rejectUnauthorized). */
  get rejectsUnverifiedPeer(): boolean {
    return this.verifiesPeer && !this.acceptUntrusted;
  }

  /** The node:tls SecureContext for the current secrets; throws when a secret is missing. */
  secureContext(store: SecretStore): tls.SecureContext {
    if (this.cached && this.cachedVersion === store.version) return this.cached;
    const certSecret = this.certSecret ? store.get(this.certSecret) : undefined;
    const caSecret = this.caSecret ? store.get(this.caSecret) : undefined;
    const missing = this.missingSecrets(store);
    if (missing.length) throw Object.assign(new Error(`TLS secret(s) not available yet: ${missing.join(', ')}`), { code: SECRET_NOT_READY });
    const cert = certSecret?.certChain ?? this.inlineCert;
    const key = certSecret?.privateKey ?? this.inlineKey;
    const ca = [this.inlineCa, caSecret?.trustedCa].filter((x): x is string => Boolean(x));
    const crl = caSecret?.crls?.length ? [...this.crls, ...caSecret.crls] : this.crls;
    this.cached = tls.createSecureContext({
      cert,
      key,
      ca: ca.length ? ca : undefined,
      // OpenSSL then checks every certificate of the chain against them (X509_V_FLAG_CRL_CHECK_ALL,
      // Envoy's default): a chain with a CA that no CRL covers is refused too.
      crl: crl.length ? crl : undefined,
      minVersion: this.minVersion ?? 'TLSv1.2',
      maxVersion: this.maxVersion,
      ciphers: `${this.ciphers ?? DEFAULT_CIPHERS}:${TLS13_SUITES}`,
      ecdhCurve: this.ecdhCurve,
      sigalgs: this.sigalgs,
      ...(this.isServer ? { sessionIdContext: this.sessionIdContext, sessionTimeout: this.sessionTimeout, secureOptions: this.noTickets ? constants.SSL_OP_NO_TICKET : 0 } : {}),
    });
    this.cachedVersion = store.version;
    this.caPems = ca;
    this.anchors = undefined;
    this.secretSans = caSecret?.sans ?? [];
    this.sessions?.clear();
    return this.cached;
  }

  /**
   * Opens an upstream TLS connection to `host`, resuming a session made with this host under the
   * current secrets (no full handshake per connection), unless max_session_keys is 0.
   */
  /**
   * `over`: a TCP socket to run TLS on (one that writes a PROXY header first) instead of a new one;
   * `alpn`: offered instead of alpn_protocols when not empty (a health check's tls_options).
   */
  connect(store: SecretStore, host: { address: string; port: number; hostname?: string; key: string }, localAddress?: string, over?: net.Socket, alpn?: readonly string[]): tls.TLSSocket {
    const opts = this.clientOptions(store, host.hostname, alpn);
    // localAddress reaches the underlying net.connect (missing from tls.ConnectionOptions' type).
    const session = this.sessions?.offer(host.key);
    const socket = tls.connect({ socket: over, host: host.address, port: host.port, localAddress, ...opts, session } as tls.ConnectionOptions);
    this.keepSessions(host.key, socket, session);
    return socket;
  }

  /**
   * Session resumption for a pool's connections to one host, sharing this context's sessions
   * (undefined with max_session_keys 0). offer() after secureContext(): a rebuilt context starts
   * with no session.
   */
  hostSessions(hostKey: string): HostSessions | undefined {
    const cache = this.sessions;
    if (!cache) return undefined;
    return { offer: () => cache.offer(hostKey), keep: (socket, offered) => this.keepSessions(hostKey, socket, offered) };
  }

  /**
   * Keeps the sessions `socket` receives, unless the secure context was rebuilt since it connected,
   * each with the certificate its server presented; `offered`: the session the socket offered.
   */
  private keepSessions(hostKey: string, socket: tls.TLSSocket, offered: Buffer | undefined): void {
    const cache = this.sessions;
    if (!cache) return;
    const cert = offered && SESSION_CERTIFICATES.get(offered);
    if (cert) RESUMED_CERTIFICATES.set(socket, cert);
    const version = this.cachedVersion;
    socket.on('session', (session: Buffer) => {
      if (version !== this.cachedVersion) return;
      const presented = upstreamPeerCertificate(socket);
      if (presented) SESSION_CERTIFICATES.set(session, presented);
      cache.add(hostKey, session);
    });
  }

  /** node:tls client options for an upstream connection (SNI, ALPN, trust, SAN check). */
  private clientOptions(store: SecretStore, hostname: string | undefined, alpn: readonly string[] | undefined): tls.ConnectionOptions {
    const offered = alpn?.length ? alpn : this.alpn;
    return {
      secureContext: this.secureContext(store),
      servername: this.sni ?? hostname,
      ALPNProtocols: offered.length ? [...offered] : undefined,
      rejectUnauthorized: this.rejectsUnverifiedPeer,
      checkServerIdentity: (_host, cert) => sanMismatch(this.checkPeer(cert)),
    };
  }

  /** SHA-256 fingerprints (X509Certificate.fingerprint256) of the trust bundle's certificates, as of the current SecureContext. */
  trustAnchors(): ReadonlySet<string> {
    return (this.anchors ??= new Set(this.caPems.flatMap((pem) => pem.match(PEM_CERTIFICATE) ?? []).map((c) => new X509Certificate(c).fingerprint256)));
  }

  /** Checks the peer certificate's SANs against match_typed_subject_alt_names; an error text or undefined. */
  checkPeer(cert: tls.PeerCertificate | undefined): string | undefined {
    const matchers = this.secretSans.length ? [...this.sans, ...this.secretSans] : this.sans;
    if (!matchers.length) return undefined;
    if (!cert || !cert.subjectaltname) return 'peer presented no certificate with subject alt names';
    const sans = parseSans(cert.subjectaltname);
    for (const m of matchers) {
      for (const [t, v] of sans) if ((m.type === 'ANY' || m.type === t) && m.matcher.match(v)) return undefined;
    }
    return `peer certificate SANs [${cert.subjectaltname}] do not match any of the configured subject alt names`;
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
/** The error code of a connection whose TLS context still waits for an SDS secret. */
export const SECRET_NOT_READY = 'SDS_SECRET_NOT_READY';
/** The error code of a peer certificate whose SANs match none configured (Node's, for a host name mismatch). */
export const SAN_MISMATCH = 'ERR_TLS_CERT_ALTNAME_INVALID';

/** checkPeer's text as the error a client's checkServerIdentity returns. */
export function sanMismatch(text: string | undefined): Error | undefined {
  return text === undefined ? undefined : Object.assign(new Error(text), { code: SAN_MISMATCH });
}

/** The sessions of one upstream host (TlsContext.hostSessions). */
export interface HostSessions {
  /** The session a new connection offers, or undefined. */
  offer(): Buffer | undefined;
  /** Keeps the sessions this connection receives; `offered`: what offer() gave it. */
  keep(socket: tls.TLSSocket, offered: Buffer | undefined): void;
}

// Node exposes no peer certificate on a client connection that resumed a session (OpenSSL returns
// no chain then), where BoringSSL keeps it in the session for Envoy: so each kept session carries
// the certificate of the handshake that made it, and a connection resuming it reports that one
// (upstream peer principal in telemetry and access logs). Its server was verified then; Node does
// not check a resumed server's identity again, as Envoy does not.
const SESSION_CERTIFICATES = new WeakMap<Buffer, tls.PeerCertificate>();
const RESUMED_CERTIFICATES = new WeakMap<tls.TLSSocket, tls.PeerCertificate>();

/** The certificate an upstream presented on this connection, or with the session it resumed. */
export function upstreamPeerCertificate(socket: tls.TLSSocket): tls.PeerCertificate | undefined {
  const cert = socket.getPeerCertificate();
  if (cert?.raw) return cert;
  return socket.isSessionReused() ? RESUMED_CERTIFICATES.get(socket) : undefined;
}

/** A tls_params list as a node:tls SecureContext option, refused with its field when OpenSSL refuses it. */
function secureOption(p: Reader, field: string, option: tls.SecureContextOptions, hint: string): string | undefined {
  const value = Object.values(option)[0] as string;
  try {
    tls.createSecureContext(option);
    return value;
  } catch (e) {
    p.issues.error(p.at(field), `${field} [${value.split(':').join(', ')}]: ${(e as Error).message}; ${hint}`);
    return undefined;
  }
}

/** Parses node's "URI:spiffe://..., DNS:foo" into [type, value] pairs. */
export function parseSans(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of text.split(/,\s*/)) {
    const i = part.indexOf(':');
    if (i < 0) continue;
    const t = part.slice(0, i);
    out.push([t === 'IP Address' ? 'IP_ADDRESS' : t === 'email' ? 'EMAIL' : t, part.slice(i + 1)]);
  }
  return out;
}

/** The first URI SAN (the SPIFFE id) of a certificate. */
export function spiffeId(cert: tls.PeerCertificate | undefined): string | undefined {
  if (!cert?.subjectaltname) return undefined;
  for (const [t, v] of parseSans(cert.subjectaltname)) if (t === 'URI') return v;
  return undefined;
}

const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const RAW_BUFFER = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

/** Reads a TransportSocket: undefined for plaintext (raw_buffer or absent), a TlsContext for TLS. */
export function readTransportSocket(r: Reader | undefined, isServer: boolean): TlsContext | undefined {
  if (!r) return undefined;
  const name = r.str('name');
  const tc = r.obj('typed_config');
  r.done();
  if (!tc) {
    if (name && name !== 'envoy.transport_sockets.raw_buffer' && name !== 'raw_buffer') r.issues.error(r.path, `transport socket ${name} needs a typed_config`);
    return undefined;
  }
  const t = tc.str('@type');
  if (t === RAW_BUFFER) {
    tc.done();
    return undefined;
  }
  if (t === (isServer ? DOWNSTREAM_TLS : UPSTREAM_TLS)) return new TlsContext(tc, isServer);
  r.issues.error(tc.at('@type'), `unsupported transport socket ${t}; supported: ${isServer ? 'DownstreamTlsContext' : 'UpstreamTlsContext'}, RawBuffer`);
  return undefined;
}
