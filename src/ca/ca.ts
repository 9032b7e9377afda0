// The certificate authority: signs workload CSRs into short-lived SPIFFE certificates (ECDSA
// P-256 keys, URI SAN spiffe://<td>/ns/<ns>/sa/<sa>), serves the control plane's TLS identity
// for :15012, and rotates its root with an overlap during which both roots are trusted. A
// self-signed root is renewed by itself (Istio's self-signed root rotator: same key, new
// certificate, once less than the grace percentage of its lifetime is left); expired roots leave
// the trust bundle. A rotation to a new key distributes the new root first and signs with it only
// after keySwitchDelaySeconds, so that every proxy trusts it before it meets a certificate from it.
// Plug-in CA files are reloaded when they change (a root rotation with plug-in files: both roots in
// root-cert.pem first, then the new intermediate).
import crypto, { type webcrypto } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RigError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { generateKey, privateKeyPem, publicKeyFrom, signingKeyFrom, x509 } from './ca-crypto.ts';
import { bundlePem, CA_FILES, createRoot, loadOrCreateSelfSigned, loadPluginCa, saveRoots, saveSelfSigned, type KeyCertBundle } from './ca-keycert-store.ts';
import { CA_ENV, envPercent } from './ca-env.ts';
import { envDurationSeconds } from '../core/go-duration.ts';
import { ServingCertProvider } from './ca-serving-cert.ts';
import { withTlsStamp } from './ca-transport-mark.ts';
import { checkIdentityPart } from './spiffe.ts';

export interface CertificateAuthorityOptions {
  /** The state directory; the CA keeps its files in `<stateDir>/ca`. */
  stateDir: string;
  trustDomain?: string;
  /** A directory with Istio plug-in CA files (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem). */
  pluginCaDir?: string;
  /** Default workload certificate lifetime (Istio: 24 h; env DEFAULT_WORKLOAD_CERT_TTL). */
  workloadCertTtlSeconds?: number;
  /** Longest lifetime a workload may ask for (Istio: 90 days; env MAX_WORKLOAD_CERT_TTL). */
  maxWorkloadCertTtlSeconds?: number;
  /** Lifetime of a self-signed root (Istio: 10 years; env CITADEL_SELF_SIGNED_CA_CERT_TTL). */
  rootCertTtlSeconds?: number;
  /** How often the self-signed root is checked for renewal (Istio: 1 h; env CITADEL_SELF_SIGNED_ROOT_CERT_CHECK_INTERVAL). */
  rootCheckIntervalSeconds?: number;
  /** The root is renewed when less than this percentage of its lifetime is left (Istio: 20; env CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE). */
  rootGracePercent?: number;
  /** After a rotation to a new root key: how long the new root is only trusted before it signs (default 30 s; proxies check their root file every 2 s). */
  keySwitchDelaySeconds?: number;
  /** How often plug-in CA files are checked for changes (default 5 s); a change is loaded without a restart. */
  pluginCheckIntervalSeconds?: number;
  /** Lifetime of the control plane's serving certificate; it is renewed at 80% of it. */
  servingCertTtlSeconds?: number;
  /** Extra DNS names / IPs for the serving certificate (istiod.istio-system.svc, localhost and 127.0.0.1 are always there). */
  servingHosts?: string[];
  log?: Logger;
}

export interface SignRequest {
  csrPem: string;
  /** The authenticated caller's SPIFFE id; the certificate is issued for it alone. */
  identity: string;
  ttlSeconds?: number;
}

export class CaError extends Error {
  readonly grpcCode: grpc.status;
  constructor(grpcCode: grpc.status, message: string) {
    super(message);
    this.name = 'CaError';
    this.grpcCode = grpcCode;
  }
}

const DAY = 86_400;
const SERVING_HOSTS = ['istiod.istio-system.svc', 'istiod.istio-system.svc.cluster.local', 'localhost', '127.0.0.1', '::1'];

function randomSerial(): string {
  // 128 random bits with the top bit clear, so the DER INTEGER stays positive.
  const b = crypto.randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString('hex');
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly caDir: string;
  readonly workloadCertTtlSeconds: number;
  readonly maxWorkloadCertTtlSeconds: number;
  private bundle: KeyCertBundle;
  private readonly opts: CertificateAuthorityOptions;
  private readonly log: Logger;
  private readonly serving = new ServingCertProvider();
  private servingTimer: NodeJS.Timeout | undefined;
  private servingCert: crypto.X509Certificate | undefined;
  private readonly rootListeners = new Set<(bundlePem: string) => void>();
  private rootTimer: NodeJS.Timeout | undefined;
  private unwatchPlugin: (() => void) | undefined;
  /** A new root waiting to sign (its key switch is delayed). */
  private pending: { key: crypto.KeyObject; cert: crypto.X509Certificate; timer: NodeJS.Timeout } | undefined;

  constructor(bundle: KeyCertBundle, opts: CertificateAuthorityOptions) {
    this.bundle = bundle;
    this.opts = opts;
    this.trustDomain = opts.trustDomain ?? 'cluster.local';
    this.caDir = path.join(opts.stateDir, 'ca');
    this.workloadCertTtlSeconds = opts.workloadCertTtlSeconds ?? envDurationSeconds(CA_ENV.workloadTtl, DAY);
    this.maxWorkloadCertTtlSeconds = opts.maxWorkloadCertTtlSeconds ?? envDurationSeconds(CA_ENV.maxWorkloadTtl, 90 * DAY);
    this.log = opts.log ?? silentLogger;
  }

  get source(): KeyCertBundle['source'] {
    return this.bundle.source;
  }

  /** The trust bundle (PEM): every root workloads must trust, the current one first. */
  trustBundlePem(): string {
    return bundlePem(this.bundle.roots);
  }

  /** The root(s) as parsed certificates, the current one first. */
  roots(): readonly crypto.X509Certificate[] {
    return this.bundle.roots;
  }

  /** Called with the new trust bundle whenever the roots change (rotation, end of overlap). */
  onRootsChanged(listener: (bundlePem: string) => void): () => void {
    this.rootListeners.add(listener);
    return () => this.rootListeners.delete(listener);
  }

  /**
   * Signs a PEM CSR for `identity`. Returns Istio's cert_chain: the workload certificate, the
   * intermediates, and last the trust bundle (all roots in one PEM element).
   */
  async sign(req: SignRequest): Promise<string[]> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(req.csrPem);
    } catch (err) {
      throw new CaError(grpc.status.INVALID_ARGUMENT, `csr: not a PEM PKCS#10 certificate request (${(err as Error).message})`);
    }
    if (!(await csr.verify())) throw new CaError(grpc.status.INVALID_ARGUMENT, 'csr: signature does not verify');
    const keyAlg = csr.publicKey.algorithm as webcrypto.RsaHashedKeyAlgorithm & webcrypto.EcKeyAlgorithm;
    const keyOk = (keyAlg.name === 'ECDSA' && ['P-256', 'P-384'].includes(keyAlg.namedCurve)) || (keyAlg.name.startsWith('RSA') && keyAlg.modulusLength >= 2048);
    if (!keyOk) throw new CaError(grpc.status.INVALID_ARGUMENT, `csr: key ${keyAlg.name} ${keyAlg.namedCurve ?? keyAlg.modulusLength ?? ''} is not accepted; use ECDSA P-256 (or RSA >= 2048)`);
    const san = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension);
    for (const name of san?.names.items ?? []) {
      if (name.type !== 'url' || name.value !== req.identity) {
        throw new CaError(grpc.status.PERMISSION_DENIED, `csr asks for ${name.type} "${name.value}" but the caller is authenticated as "${req.identity}"`);
      }
    }
    const ttl = req.ttlSeconds && req.ttlSeconds > 0 ? req.ttlSeconds : this.workloadCertTtlSeconds;
    if (ttl > this.maxWorkloadCertTtlSeconds) {
      throw new CaError(grpc.status.INVALID_ARGUMENT, `validity_duration ${ttl}s exceeds the CA's maximum of ${this.maxWorkloadCertTtlSeconds}s`);
    }
    const leaf = await this.issue(csr.publicKey, { uris: [req.identity], ttlSeconds: ttl, serverAuth: true, clientAuth: true });
    this.log.info({ identity: req.identity, serial: leaf.serialNumber, notAfter: leaf.notAfter.toISOString() }, 'issued workload certificate');
    return [leaf.toString('pem') + '\n', ...this.bundle.intermediates.map((c) => c.toString()), this.trustBundlePem()];
  }

  private async issue(
    publicKey: x509.PublicKey,
    p: { uris?: string[]; dns?: string[]; ips?: string[]; ttlSeconds: number; serverAuth: boolean; clientAuth: boolean },
  ): Promise<x509.X509Certificate> {
    const signer = this.bundle.signingCert;
    const now = Date.now();
    // Never outlive the signing certificate.
    const notAfter = new Date(Math.min(now + p.ttlSeconds * 1000, Date.parse(signer.validTo)));
    const names: x509.JsonGeneralName[] = [
      ...(p.uris ?? []).map((value) => ({ type: 'url' as const, value })),
      ...(p.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(p.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    const usages = [...(p.serverAuth ? [x509.ExtendedKeyUsage.serverAuth] : []), ...(p.clientAuth ? [x509.ExtendedKeyUsage.clientAuth] : [])];
    const issuerCert = new x509.X509Certificate(new Uint8Array(signer.raw));
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      // Istio's workload certificates have an empty subject and a critical SAN.
      subject: '',
      issuer: issuerCert.subjectName,
      notBefore: new Date(now),
      notAfter,
      publicKey,
      signingKey: this.bundle.signingKey.cryptoKey,
      signingAlgorithm: this.bundle.signingKey.algorithm,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension(usages),
        new x509.BasicConstraintsExtension(false, undefined, true),
        await x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey),
        new x509.SubjectAlternativeNameExtension(names, true),
      ],
    });
  }

  /** Issues (and keeps renewing) the control plane's serving certificate for :15012. */
  private async renewServingCert(): Promise<void> {
    const key = generateKey('ec-p256');
    const hosts = [...new Set([...SERVING_HOSTS, ...(this.opts.servingHosts ?? [])])];
    const ttl = this.opts.servingCertTtlSeconds ?? DAY;
    const cert = await this.issue(await publicKeyFrom(key), {
      uris: [`spiffe://${this.trustDomain}/ns/istio-system/sa/istiod`],
      dns: hosts.filter((h) => !isIp(h)),
      ips: hosts.filter(isIp),
      ttlSeconds: ttl,
      serverAuth: true,
      clientAuth: false,
    });
    const chainPem = [cert.toString('pem') + '\n', ...this.bundle.intermediates.map((c) => c.toString())].join('');
    this.servingCert = new crypto.X509Certificate(cert.toString('pem'));
    this.serving.update({ certificate: Buffer.from(chainPem), privateKey: Buffer.from(privateKeyPem(key)) }, Buffer.from(this.trustBundlePem()));
    clearTimeout(this.servingTimer);
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    const delay = Math.min(cert.notBefore.getTime() + lifetime * 0.8 - Date.now(), 2 ** 31 - 1);
    this.servingTimer = setTimeout(() => {
      this.renewServingCert().catch((err: unknown) => this.log.error({ err }, 'renewing the serving certificate failed'));
    }, Math.max(delay, 1000));
    this.servingTimer.unref();
  }

  /** The serving certificate currently presented on :15012 (for diagnostics and tests). */
  currentServingCert(): crypto.X509Certificate | undefined {
    return this.servingCert;
  }

  /**
   * TLS credentials for the control plane's :15012 gRPC server (ADS over TLS and the certificate
   * service). Client certificates are requested but optional; the certificate follows renewals
   * and root rotations without restarting the server.
   */
  serverCredentials(): grpc.ServerCredentials {
    return withTlsStamp(grpc.experimental.createCertificateProviderServerCredentials(this.serving, this.serving, false));
  }

  /**
   * Starts a new self-signed root; the old root stays in the trust bundle (overlap) until it
   * expires or `endRootOverlap()`. With `keepKey` the new root has the old one's key (a renewal:
   * it signs at once). Otherwise it has a new key, is distributed first (roots listeners, the
   * serving certificate's trust) and signs only after keySwitchDelaySeconds (`switchNow` skips the
   * wait; `dropOld` ends the overlap at once, for a root that expired).
   */
  async rotateRoot(opts: { dropOld?: boolean; keepKey?: boolean; switchNow?: boolean } = {}): Promise<void> {
    if (this.bundle.source !== 'self-signed') {
      throw new RigError('MESH_ERR_USAGE', 'the CA uses plug-in CA files: rotate by replacing them (root-cert.pem with both roots during the overlap); the CA loads them when they change');
    }
    this.cancelPending();
    const { key, cert } = await createRoot(this.trustDomain, this.rootTtlSeconds(), opts.keepKey ? this.bundle.signingKey.keyObject : undefined);
    const roots = opts.dropOld ? [cert] : [cert, ...this.bundle.roots];
    const delayMs = (this.opts.keySwitchDelaySeconds ?? 30) * 1000;
    if (opts.keepKey || opts.dropOld || opts.switchNow || delayMs <= 0) {
      await this.switchSigning(key, cert, roots);
      return;
    }
    this.setRoots(roots);
    this.log.info({ roots: roots.length, switchAfterMs: delayMs }, 'distributed a new root CA; it signs once the proxies trust it');
    const timer = setTimeout(() => {
      this.pending = undefined;
      this.switchSigning(key, cert, this.bundle.roots).catch((err: unknown) => this.log.error({ err }, 'switching to the new root CA failed'));
    }, delayMs);
    timer.unref();
    this.pending = { key, cert, timer };
  }

  private async switchSigning(key: crypto.KeyObject, cert: crypto.X509Certificate, roots: crypto.X509Certificate[]): Promise<void> {
    this.bundle = { source: 'self-signed', signingKey: await signingKeyFrom(key, path.join(this.caDir, 'ca-key.pem')), signingCert: cert, intermediates: [], roots };
    saveSelfSigned(this.caDir, key, cert, roots);
    this.log.info({ roots: roots.length, subject: cert.subject, notAfter: cert.validTo }, 'rotated the root CA');
    await this.renewServingCert();
    this.notifyRoots();
  }

  private cancelPending(): void {
    if (!this.pending) return;
    clearTimeout(this.pending.timer);
    this.pending = undefined;
  }

  private rootTtlSeconds(): number {
    return this.opts.rootCertTtlSeconds ?? envDurationSeconds(CA_ENV.rootTtl, 10 * 365 * DAY);
  }

  /** Replaces the trust bundle (persisted for a self-signed CA), updates :15012's client trust, tells the listeners. */
  private setRoots(roots: crypto.X509Certificate[]): void {
    this.bundle = { ...this.bundle, roots };
    if (this.bundle.source === 'self-signed') saveRoots(this.caDir, roots);
    this.serving.updateCa(Buffer.from(this.trustBundlePem()));
    this.notifyRoots();
  }

  /** Ends a rotation's overlap: only the signing root (and a new root waiting to sign) stays trusted. */
  endRootOverlap(): void {
    const keep = this.bundle.roots.filter((r) => r === this.bundle.signingCert || r.fingerprint256 === this.bundle.signingCert.fingerprint256 || r === this.pending?.cert);
    if (keep.length === this.bundle.roots.length) return;
    this.setRoots(keep);
  }

  /**
   * Plug-in CA files are watched, as istiod watches cacerts: a changed set is loaded without a
   * restart (a new root written into root-cert.pem beside the old one reaches the workloads; an
   * unusable set is logged and the current one kept).
   */
  private watchPluginFiles(dir: string): void {
    const files = Object.values(CA_FILES).map((f) => path.join(dir, f));
    let timer: NodeJS.Timeout | undefined;
    // Files are replaced one by one: load once they have been quiet for a moment.
    const changed = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void this.reloadPlugin(dir), 300);
      timer.unref();
    };
    const interval = (this.opts.pluginCheckIntervalSeconds ?? 5) * 1000;
    for (const f of files) fs.watchFile(f, { interval, persistent: false }, changed);
    this.unwatchPlugin = () => {
      clearTimeout(timer);
      for (const f of files) fs.unwatchFile(f, changed);
    };
  }

  private async reloadPlugin(dir: string): Promise<void> {
    let bundle: KeyCertBundle;
    try {
      bundle = await loadPluginCa(dir, this.log);
    } catch (err) {
      this.log.error({ dir, err: (err as Error).message }, 'the plug-in CA files changed but cannot be used; the CA keeps its current ones');
      return;
    }
    const rootsChanged = bundlePem(bundle.roots) !== this.trustBundlePem();
    this.bundle = bundle;
    this.log.info({ dir, roots: bundle.roots.length, signer: bundle.signingCert.subject }, 'loaded the changed plug-in CA files');
    await this.renewServingCert();
    if (rootsChanged) this.notifyRoots();
  }

  /** The self-signed root rotator: drops expired roots and renews the root inside its grace period. */
  private async checkRoots(): Promise<void> {
    if (this.bundle.source !== 'self-signed') return;
    const now = Date.now();
    const signing = this.bundle.signingCert;
    const live = this.bundle.roots.filter((r) => r.fingerprint256 === signing.fingerprint256 || Date.parse(r.validTo) > now);
    if (live.length !== this.bundle.roots.length) {
      this.log.info({ dropped: this.bundle.roots.length - live.length }, 'expired roots left the trust bundle');
      this.setRoots(live);
    }
    const from = Date.parse(signing.validFrom);
    const to = Date.parse(signing.validTo);
    const grace = this.opts.rootGracePercent ?? envPercent(CA_ENV.rootGracePercent, 20);
    if (!this.pending && to - now < ((to - from) * grace) / 100) {
      this.log.info({ notAfter: signing.validTo, gracePercent: grace }, 'the root CA is in its grace period: renewing it');
      await this.rotateRoot({ keepKey: true });
    }
  }

  private notifyRoots(): void {
    const pem = this.trustBundlePem();
    for (const l of this.rootListeners) l(pem);
  }

  /** Stops renewing the serving certificate and the root. */
  close(): void {
    clearTimeout(this.servingTimer);
    clearInterval(this.rootTimer);
    this.cancelPending();
    this.unwatchPlugin?.();
  }

  /** @internal used by createCertificateAuthority */
  async start(): Promise<void> {
    await this.renewServingCert();
    if (this.bundle.source !== 'self-signed') {
      if (this.opts.pluginCaDir) this.watchPluginFiles(this.opts.pluginCaDir);
      return;
    }
    await this.checkRoots();
    const everyMs = (this.opts.rootCheckIntervalSeconds ?? envDurationSeconds(CA_ENV.rootCheckInterval, 3600)) * 1000;
    this.rootTimer = setInterval(() => {
      this.checkRoots().catch((err: unknown) => this.log.error({ err }, 'checking the root CA failed'));
    }, Math.min(everyMs, 2 ** 31 - 1));
    this.rootTimer.unref();
  }
}

/** Loads (or creates on first start) the CA and issues the control plane's serving certificate. */
export async function createCertificateAuthority(opts: CertificateAuthorityOptions): Promise<CertificateAuthority> {
  const trustDomain = opts.trustDomain ?? 'cluster.local';
  const problem = checkIdentityPart('trust domain', trustDomain);
  if (problem) throw new RigError('MESH_ERR_USAGE', problem);
  const log = opts.log ?? silentLogger;
  const bundle = opts.pluginCaDir
    ? await loadPluginCa(opts.pluginCaDir, log)
    : await loadOrCreateSelfSigned(path.join(opts.stateDir, 'ca'), trustDomain, opts.rootCertTtlSeconds ?? envDurationSeconds(CA_ENV.rootTtl, 10 * 365 * DAY), log);
  const ca = new CertificateAuthority(bundle, { ...opts, trustDomain });
  if (bundle.source === 'self-signed' && Date.parse(bundle.signingCert.validTo) <= Date.now()) {
    log.warn({ notAfter: bundle.signingCert.validTo }, 'the self-signed root has expired: starting a new root (workloads must trust the new root-cert.pem)');
    await ca.rotateRoot({ dropOld: true });
  }
  await ca.start();
  return ca;
}
