// The proxy's workload identity (Istio's agent SDS server, in process): makes a key that never
// leaves the process, asks the CA to sign its SPIFFE CSR, and hands the proxy the SDS secrets
// `default` (certificate chain + key) and `ROOTCA` (trust bundle). Rotates at 80% of the
// certificate's lifetime, at once when the CA's root file changes, and retries with backoff
// while the CA is away (the current certificate stays in use meanwhile).
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import tls from 'node:tls';
import { SECRET_TYPE, type EnvoyJson } from '../../envoy/index.ts';
import { silentLogger, type Logger } from '../../core/log.ts';
import { Backoff, type BackoffOptions } from '../xds-client/backoff.ts';
import type { XdsSink } from '../xds-client/xds-sink.ts';
import { CaClient } from './identity-ca-client.ts';
import { createKeyAndCsr } from './identity-csr.ts';

export const DEFAULT_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';
/** The operating system's trusted CAs (Istio's agent serves them under this name). */
export const SYSTEM_CA_SECRET = 'file-root:system';

export interface IdentityManagerOptions {
  caAddress: string;
  caRootFile: string;
  tokenFile?: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  /** IstioCertificateRequest.metadata (WorkloadName, WorkloadIP, ClusterID). */
  metadata?: Record<string, string>;
  sink: XdsSink;
  log?: Logger;
  /** Requested certificate lifetime; 0 or unset lets the CA choose (Istio: 24 h). */
  certTtlSeconds?: number;
  /** Fraction of the lifetime after which the certificate is renewed (Istio's agent: 0.8 with jitter). */
  rotateAt?: number;
  backoff?: BackoffOptions;
  /** How often the CA root file is checked for changes. */
  rootCheckIntervalMs?: number;
  caServerName?: string;
}

export interface IdentityCertificate {
  identity: string;
  certChainPem: string;
  rootBundlePem: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IdentityState {
  identity: string;
  ca: string;
  certificate?: { serialNumber: string; notBefore: string; notAfter: string; roots: number };
  nextRenewal?: string;
  issued: number;
  lastError?: { message: string; at: string };
}

export interface IdentityEvents {
  /** A certificate was issued and handed to the proxy. */
  issued: [IdentityCertificate];
  error: [Error];
}

export class IdentityManager extends EventEmitter<IdentityEvents> {
  readonly identity: string;
  private readonly opts: IdentityManagerOptions;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private client: CaClient | undefined;
  /** What the client was built with: root file content and the serial of the client certificate. */
  private clientKey = '';
  private rootFilePem = '';
  private currentKeyPem = '';
  private current: IdentityCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextRenewal: Date | undefined;
  private issuedCount = 0;
  private lastError: IdentityState['lastError'];
  private inFlight: Promise<void> | undefined;
  /** A renewal was asked for while one was running (e.g. the root changed meanwhile). */
  private renewAgain = false;
  private stopped = true;
  private readonly onRootFile = () => this.checkRootFile();

  constructor(opts: IdentityManagerOptions) {
    super();
    this.opts = opts;
    this.identity = `spiffe://${opts.trustDomain}/ns/${opts.namespace}/sa/${opts.serviceAccount}`;
    this.log = (opts.log ?? silentLogger).child({ component: 'identity', identity: this.identity });
    this.backoff = new Backoff({ initialMs: 1000, maxMs: 60_000, ...opts.backoff });
  }

  /** Starts fetching; resolves once the first certificate is in the proxy (keeps retrying until then). */
  start(): Promise<void> {
    if (!this.stopped) return this.ready();
    this.stopped = false;
    fs.watchFile(this.opts.caRootFile, { interval: this.opts.rootCheckIntervalMs ?? 2000, persistent: false }, this.onRootFile);
    this.renewNow();
    return this.ready();
  }

  /** Resolves when a certificate is in place. */
  ready(): Promise<void> {
    if (this.current) return Promise.resolve();
    return new Promise((resolve) => this.once('issued', () => resolve()));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    fs.unwatchFile(this.opts.caRootFile, this.onRootFile);
    this.client?.close();
    this.client = undefined;
  }

  certificate(): IdentityCertificate | undefined {
    return this.current;
  }

  state(): IdentityState {
    const c = this.current;
    return {
      identity: this.identity,
      ca: this.opts.caAddress,
      certificate: c && { serialNumber: c.serialNumber, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString(), roots: countCerts(c.rootBundlePem) },
      nextRenewal: this.nextRenewal?.toISOString(),
      issued: this.issuedCount,
      lastError: this.lastError,
    };
  }

  private renewNow(): void {
    clearTimeout(this.timer);
    if (this.inFlight) {
      this.renewAgain = true;
      return;
    }
    this.inFlight = this.renew().finally(() => {
      this.inFlight = undefined;
      if (this.renewAgain && !this.stopped) {
        this.renewAgain = false;
        this.renewNow();
      }
    });
  }

  private schedule(at: Date): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.nextRenewal = at;
    const delay = Math.min(Math.max(at.getTime() - Date.now(), 0), 2 ** 31 - 1);
    this.timer = setTimeout(() => this.renewNow(), delay);
  }

  private checkRootFile(): void {
    let pem: string;
    try {
      pem = fs.readFileSync(this.opts.caRootFile, 'utf8');
    } catch {
      return;
    }
    if (pem && this.rootFilePem && pem !== this.rootFilePem) {
      this.log.info({ file: this.opts.caRootFile }, 'CA root changed: renewing the workload certificate');
      this.renewNow();
    }
  }

  /** A CA client trusting the current content of the root file, presenting the current certificate while it is valid. */
  private caClient(): CaClient {
    const pem = fs.readFileSync(this.opts.caRootFile, 'utf8');
    const cert = this.current && this.current.notAfter.getTime() > Date.now() ? this.current : undefined;
    const key = `${pem}\n${cert?.serialNumber ?? ''}`;
    if (!this.client || key !== this.clientKey) {
      this.client?.close();
      this.client = new CaClient({
        address: this.opts.caAddress,
        rootPem: Buffer.from(pem),
        tokenFile: this.opts.tokenFile,
        serverName: this.opts.caServerName,
        clientCertificate: cert && { privateKeyPem: this.currentKeyPem, certChainPem: cert.certChainPem },
      });
      this.clientKey = key;
      this.rootFilePem = pem;
    }
    return this.client;
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    try {
      const client = this.caClient();
      const key = await createKeyAndCsr(this.identity);
      const chain = await client.createCertificate(key.csrPem, this.opts.certTtlSeconds ?? 0, this.opts.metadata ?? {});
      if (this.stopped) return;
      const cert = this.check(chain, key.privateKeyPem);
      const problems = this.opts.sink.apply(SECRET_TYPE, secrets(cert, key.privateKeyPem), cert.serialNumber);
      if (problems.length) throw new Error(`the proxy refused the new certificate: ${problems.join('; ')}`);
      this.current = cert;
      this.currentKeyPem = key.privateKeyPem;
      this.issuedCount++;
      this.lastError = undefined;
      this.backoff.reset();
      const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
      this.schedule(new Date(cert.notBefore.getTime() + lifetime * (this.opts.rotateAt ?? 0.8)));
      this.log.info({ serial: cert.serialNumber, notAfter: cert.notAfter.toISOString(), renewAt: this.nextRenewal?.toISOString() }, 'workload certificate issued');
      this.emit('issued', cert);
    } catch (err) {
      if (this.stopped) return;
      const message = describe(err);
      this.lastError = { message, at: new Date().toISOString() };
      const delay = this.backoff.next();
      this.log.warn({ ca: this.opts.caAddress, err: message, retryInMs: delay, current: this.current?.notAfter.toISOString() }, 'cannot get a workload certificate; retrying');
      this.schedule(new Date(Date.now() + delay));
      if (this.listenerCount('error')) this.emit('error', err as Error);
    }
  }

  /** Checks what the CA sent: our identity, our key, in its validity period. */
  private check(chain: string[], privateKeyPem: string): IdentityCertificate {
    const certs = chain.slice(0, -1);
    const rootBundlePem = chain[chain.length - 1]!;
    if (certs.length === 0) throw new Error('the CA sent no workload certificate (cert_chain has only the root)');
    const leaf = new crypto.X509Certificate(certs[0]!);
    const uris = (leaf.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
    if (!uris.includes(this.identity)) throw new Error(`the CA issued a certificate for ${uris.join(', ') || 'no URI SAN'}, not ${this.identity}`);
    if (!leaf.checkPrivateKey(crypto.createPrivateKey(privateKeyPem))) throw new Error("the CA's certificate does not match the key of the CSR");
    const notBefore = new Date(leaf.validFrom);
    const notAfter = new Date(leaf.validTo);
    if (notAfter.getTime() <= Date.now()) throw new Error(`the CA issued an already expired certificate (${leaf.validTo})`);
    return { identity: this.identity, certChainPem: certs.map(ensureNewline).join(''), rootBundlePem: ensureNewline(rootBundlePem), serialNumber: leaf.serialNumber, notBefore, notAfter };
  }
}

function ensureNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : pem + '\n';
}

function countCerts(pem: string): number {
  return pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; details?: string; message?: string };
  if (typeof e?.code === 'number' && e.details !== undefined) return `CA answered ${e.code === 16 ? 'UNAUTHENTICATED' : e.code === 7 ? 'PERMISSION_DENIED' : e.code === 14 ? 'UNAVAILABLE' : `code ${e.code}`}: ${e.details}`;
  return e?.message ?? String(err);
}

/**
 * The SDS secrets Istio's agent serves: `default` (certificate + key), `ROOTCA` (the mesh's trust
 * bundle) and `file-root:system` (the operating system's CAs, for a DestinationRule that originates
 * TLS without caCertificates).
 */
export function secrets(cert: IdentityCertificate, privateKeyPem: string): Map<string, EnvoyJson> {
  return new Map<string, EnvoyJson>([
    [DEFAULT_SECRET, { name: DEFAULT_SECRET, tls_certificate: { certificate_chain: { inline_string: cert.certChainPem }, private_key: { inline_string: privateKeyPem } } }],
    [ROOT_SECRET, { name: ROOT_SECRET, validation_context: { trusted_ca: { inline_string: cert.rootBundlePem } } }],
    systemCaSecret(),
  ]);
}

/** `file-root:system`: the operating system's CAs (what Node reads from OpenSSL's default store). */
export function systemCaSecret(): [string, EnvoyJson] {
  return [SYSTEM_CA_SECRET, { name: SYSTEM_CA_SECRET, validation_context: { trusted_ca: { inline_string: tls.getCACertificates('system').join('\n') } } }];
}
