// The workload's key and CSR: an ECDSA P-256 key made in this process (it never leaves it) and a
// PKCS#10 request whose only SAN is the workload's SPIFFE id, as Istio's agent sends.
import crypto from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509 needs a Reflect polyfill, loaded before it
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(crypto.webcrypto as never);

export interface WorkloadKey {
  privateKeyPem: string;
  csrPem: string;
}

export async function createKeyAndCsr(spiffeId: string): Promise<WorkloadKey> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keys = {
    privateKey: privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']),
    publicKey: publicKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: '',
    keys: keys as never,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true)],
  });
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, csrPem: csr.toString('pem') };
}
