// Key handling shared by the CA and the proxy's identity: node:crypto makes and reads keys,
// @peculiar/x509 (on Node's WebCrypto) builds certificates and CSRs.
import crypto, { type webcrypto } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509 needs a Reflect polyfill, loaded before it
import * as x509 from '@peculiar/x509';
import { RigError } from '../core/errors.ts';

x509.cryptoProvider.set(crypto.webcrypto as never);

export { x509 };

/** A private key ready to sign with, in both Node's and WebCrypto's forms. */
export interface SigningKey {
  keyObject: crypto.KeyObject;
  cryptoKey: webcrypto.CryptoKey;
  /** The WebCrypto signature algorithm for this key (SHA-256 with its scheme). */
  algorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
}

const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** Wraps a Node private key for signing; supports RSA (PKCS#1 v1.5) and ECDSA P-256/P-384/P-521. */
export async function signingKeyFrom(keyObject: crypto.KeyObject, where: string): Promise<SigningKey> {
  if (keyObject.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { keyObject, cryptoKey: keyObject.toCryptoKey(algorithm, false, ['sign']), algorithm };
  }
  if (keyObject.asymmetricKeyType === 'ec') {
    const namedCurve = CURVES[keyObject.asymmetricKeyDetails?.namedCurve ?? ''];
    if (namedCurve) {
      return { keyObject, cryptoKey: keyObject.toCryptoKey({ name: 'ECDSA', namedCurve }, false, ['sign']), algorithm: { name: 'ECDSA', hash: 'SHA-256' } };
    }
  }
  throw new RigError(
    'MESH_ERR_INVALID_CONFIG',
    `${where}: unsupported key type ${keyObject.asymmetricKeyType}${keyObject.asymmetricKeyDetails?.namedCurve ? ` (${keyObject.asymmetricKeyDetails.namedCurve})` : ''}; use an RSA or ECDSA P-256/P-384 key`,
  );
}

/** A public key as @peculiar/x509 wants it. */
export function publicKeyFrom(keyObject: crypto.KeyObject): Promise<x509.PublicKey> {
  const der = crypto.createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
  return x509.PublicKey.create(new Uint8Array(der));
}

/** Generates a key in the process: ECDSA P-256 for workloads and serving certificates, RSA for roots. */
export function generateKey(kind: 'ec-p256' | 'rsa-2048'): crypto.KeyObject {
  return kind === 'ec-p256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

export function privateKeyPem(key: crypto.KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Splits a PEM bundle into its certificates (each as one PEM block). */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => b + '\n') ?? [];
}
