// The CA's signing material: a self-signed root made on first start and kept in the state
// directory, or a user's own CA loaded the way Istio's plug-in CA reads /etc/cacerts
// (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem). Private keys are written with mode
// 0600 and never logged.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RigError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { generateKey, privateKeyPem, publicKeyFrom, signingKeyFrom, splitPem, x509, type SigningKey } from './ca-crypto.ts';

export const CA_FILES = { caCert: 'ca-cert.pem', caKey: 'ca-key.pem', rootCert: 'root-cert.pem', certChain: 'cert-chain.pem' } as const;

export interface KeyCertBundle {
  source: 'self-signed' | 'plugin';
  signingKey: SigningKey;
  /** The certificate whose key signs workload certificates (the root itself when self-signed). */
  signingCert: crypto.X509Certificate;
  /** What follows a leaf in a chain: the signing certificate (unless it is a root) and the intermediates above it, root excluded. */
  intermediates: crypto.X509Certificate[];
  /** The trust bundle: every root workloads must trust (the current root first). */
  roots: crypto.X509Certificate[];
}

function readFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RigError('MESH_ERR_FILE', `cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function parseCerts(pem: string, file: string): crypto.X509Certificate[] {
  const blocks = splitPem(pem);
  if (blocks.length === 0) throw new RigError('MESH_ERR_INVALID_CONFIG', `${file}: no PEM certificate found`);
  return blocks.map((b, i) => {
    try {
      return new crypto.X509Certificate(b);
    } catch (err) {
      throw new RigError('MESH_ERR_INVALID_CONFIG', `${file}: certificate #${i + 1} cannot be parsed: ${(err as Error).message}`, { cause: err });
    }
  });
}

/** Writes a file atomically (temporary file + rename) with the given mode. */
export function writeFileAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

export function bundlePem(certs: readonly crypto.X509Certificate[]): string {
  return certs.map((c) => c.toString()).join('');
}

function isUsableCa(cert: crypto.X509Certificate): boolean {
  return cert.ca;
}

/** Verifies that `chain[0]` chains through `chain[1..]` to one of `roots`; throws naming the broken link. */
function verifyChain(chain: crypto.X509Certificate[], roots: crypto.X509Certificate[], where: string): void {
  const now = Date.now();
  for (const c of [...chain, ...roots]) {
    if (Date.parse(c.validTo) <= now) throw new RigError('MESH_ERR_INVALID_CONFIG', `${where}: certificate "${c.subject.replace(/\n/g, ', ')}" expired on ${c.validTo}`);
  }
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1] ?? roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    if (!issuer || !cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw new RigError(
        'MESH_ERR_INVALID_CONFIG',
        `${where}: certificate "${cert.subject.replace(/\n/g, ', ')}" is not signed by ${chain[i + 1] ? 'the next certificate in cert-chain.pem' : 'any root in root-cert.pem'}`,
      );
    }
  }
}

/** Loads Istio-style plug-in CA files from `dir`. */
export async function loadPluginCa(dir: string, log: Logger): Promise<KeyCertBundle> {
  const file = (name: string) => path.join(dir, name);
  const caCertFile = file(CA_FILES.caCert);
  const [signingCert] = parseCerts(readFile(caCertFile, 'CA certificate'), caCertFile);
  const keyFile = file(CA_FILES.caKey);
  let keyObject: crypto.KeyObject;
  try {
    keyObject = crypto.createPrivateKey(readFile(keyFile, 'CA private key'));
  } catch (err) {
    if (err instanceof RigError) throw err;
    throw new RigError('MESH_ERR_INVALID_CONFIG', `${keyFile}: not a PEM private key (${(err as Error).message})`);
  }
  if ((fs.statSync(keyFile).mode & 0o077) !== 0) log.warn({ file: keyFile }, 'CA private key is readable by group or others; chmod 600 it');
  const rootFile = file(CA_FILES.rootCert);
  const roots = parseCerts(readFile(rootFile, 'root certificate'), rootFile);
  const chainFile = file(CA_FILES.certChain);
  const chain = fs.existsSync(chainFile) ? parseCerts(readFile(chainFile, 'certificate chain'), chainFile) : [signingCert!];
  if (!signingCert!.checkPrivateKey(keyObject)) throw new RigError('MESH_ERR_INVALID_CONFIG', `${keyFile} does not match the public key of ${caCertFile}`);
  if (!isUsableCa(signingCert!)) throw new RigError('MESH_ERR_INVALID_CONFIG', `${caCertFile} is not a CA certificate (basicConstraints CA:TRUE is required)`);
  if (Date.parse(signingCert!.validTo) <= Date.now()) throw new RigError('MESH_ERR_INVALID_CONFIG', `${caCertFile} expired on ${signingCert!.validTo}; install renewed plug-in CA files`);
  const isRoot = (c: crypto.X509Certificate) => roots.some((r) => r.fingerprint256 === c.fingerprint256);
  // cert-chain.pem usually starts with ca-cert.pem and may end with the root: keep what lies between.
  const above = chain.filter((c) => c.fingerprint256 !== signingCert!.fingerprint256 && !isRoot(c));
  const intermediates = isRoot(signingCert!) ? [] : [signingCert!, ...above];
  if (intermediates.length) verifyChain(intermediates, roots, dir);
  return { source: 'plugin', signingKey: await signingKeyFrom(keyObject, keyFile), signingCert: signingCert!, intermediates, roots };
}

/**
 * Makes a self-signed root for the trust domain: with a new RSA 2048 key (Istio's default), or with
 * `existingKey` (a renewed root: same subject and key, so certificates signed before and after
 * verify against either root).
 */
export async function createRoot(trustDomain: string, ttlSeconds: number, existingKey?: crypto.KeyObject): Promise<{ key: crypto.KeyObject; cert: crypto.X509Certificate }> {
  const key = existingKey ?? generateKey('rsa-2048');
  const signingKey = await signingKeyFrom(key, 'root key');
  const publicKey = await publicKeyFrom(key);
  // Backdated for clock skew (a minute, less for a very short-lived root).
  const notBefore = new Date(Date.now() - Math.min(60_000, ttlSeconds * 100));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    subject: `O=${trustDomain}`,
    issuer: `O=${trustDomain}`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + ttlSeconds * 1000),
    publicKey,
    signingKey: signingKey.cryptoKey,
    signingAlgorithm: signingKey.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  return { key, cert: new crypto.X509Certificate(cert.toString('pem')) };
}

export function saveSelfSigned(dir: string, key: crypto.KeyObject, cert: crypto.X509Certificate, roots: crypto.X509Certificate[]): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(path.join(dir, CA_FILES.caKey), privateKeyPem(key), 0o600);
  writeFileAtomic(path.join(dir, CA_FILES.caCert), cert.toString(), 0o644);
  writeFileAtomic(path.join(dir, CA_FILES.rootCert), bundlePem(roots), 0o644);
}

/**
 * Loads the self-signed root from `dir`, or creates it on first start. root-cert.pem is the trust
 * bundle: the current root first, then earlier roots kept during a rotation's overlap (expired
 * ones are dropped).
 */
export async function loadOrCreateSelfSigned(dir: string, trustDomain: string, rootTtlSeconds: number, log: Logger): Promise<KeyCertBundle> {
  const keyFile = path.join(dir, CA_FILES.caKey);
  if (!fs.existsSync(keyFile)) {
    const { key, cert } = await createRoot(trustDomain, rootTtlSeconds);
    saveSelfSigned(dir, key, cert, [cert]);
    log.info({ dir, subject: cert.subject, notAfter: cert.validTo }, 'created a self-signed root CA');
    return { source: 'self-signed', signingKey: await signingKeyFrom(key, keyFile), signingCert: cert, intermediates: [], roots: [cert] };
  }
  let keyObject: crypto.KeyObject;
  try {
    keyObject = crypto.createPrivateKey(readFile(keyFile, 'CA private key'));
  } catch (err) {
    if (err instanceof RigError) throw err;
    throw new RigError('MESH_ERR_INVALID_CONFIG', `${keyFile}: not a PEM private key (${(err as Error).message}); remove ${dir} to start a new CA`);
  }
  const certFile = path.join(dir, CA_FILES.caCert);
  const [cert] = parseCerts(readFile(certFile, 'CA certificate'), certFile);
  if (!cert!.checkPrivateKey(keyObject)) throw new RigError('MESH_ERR_INVALID_CONFIG', `${keyFile} does not match ${certFile}; remove ${dir} to start a new CA`);
  const rootFile = path.join(dir, CA_FILES.rootCert);
  const now = Date.now();
  const bundle = fs.existsSync(rootFile) ? parseCerts(readFile(rootFile, 'root bundle'), rootFile) : [];
  const others = bundle.filter((c) => c.fingerprint256 !== cert!.fingerprint256 && Date.parse(c.validTo) > now);
  return { source: 'self-signed', signingKey: await signingKeyFrom(keyObject, keyFile), signingCert: cert!, intermediates: [], roots: [cert!, ...others] };
}

/** Writes the trust bundle (root-cert.pem). */
export function saveRoots(dir: string, roots: crypto.X509Certificate[]): void {
  writeFileAtomic(path.join(dir, CA_FILES.rootCert), bundlePem(roots), 0o644);
}
