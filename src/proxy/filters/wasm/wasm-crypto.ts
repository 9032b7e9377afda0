// Envoy's crypto foreign functions: `sign` (SignArguments → SignResult) and `verify_signature`
// (VerifySignatureArguments → VerifySignatureResult). A key is DER (PKCS#8 private key,
// SubjectPublicKeyInfo public key) or PEM, exactly one of the two; without a usable key the call
// answers BadArgument. Otherwise it answers Ok with the result message, whose `error` says why a
// signature was not made or did not verify (an unknown hash: "<hash> is not supported."). The
// signature scheme is the key's default, as OpenSSL's EVP_DigestSign: PKCS#1 v1.5 for RSA, DER
// ECDSA for EC keys; Ed25519 takes no hash.
import crypto from 'node:crypto';
import { WasmResult } from './wasm-abi.ts';
import { decodeArgs, encodeResult, type SignArguments, type VerifySignatureArguments } from './wasm-foreign-args.ts';
import type { ForeignResult } from './wasm-foreign.ts';

const HASHES = new Set(['sha1', 'sha224', 'sha256', 'sha384', 'sha512']);

/** The key the arguments give: DER or PEM, not both; undefined when there is none or it does not parse. */
function importKey(der: Uint8Array, pem: string, kind: 'private' | 'public'): crypto.KeyObject | undefined {
  const hasDer = der.length > 0;
  if (hasDer === (pem !== '')) return undefined;
  try {
    if (kind === 'private') return hasDer ? crypto.createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }) : crypto.createPrivateKey(pem);
    return hasDer ? crypto.createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }) : crypto.createPublicKey(pem);
  } catch {
    return undefined;
  }
}

/** The digest for `name` (as Envoy: case-insensitive), null for a key that signs without one, undefined when unknown. */
function digest(name: string, key: crypto.KeyObject): string | null | undefined {
  if (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448') return null;
  const h = name.toLowerCase();
  return HASHES.has(h) ? h : undefined;
}

export function sign(args: Buffer): ForeignResult {
  const a = decodeArgs<SignArguments>('SignArguments', args);
  if (!a) return { result: WasmResult.BadArgument };
  const key = importKey(a.private_key, a.private_key_pem, 'private');
  if (!key) return { result: WasmResult.BadArgument };
  const hash = digest(a.hash_function, key);
  if (hash === undefined) return { result: WasmResult.Ok, data: encodeResult('SignResult', { result: false, error: `${a.hash_function} is not supported.` }) };
  try {
    return { result: WasmResult.Ok, data: encodeResult('SignResult', { result: true, signature: crypto.sign(hash, a.text, key), error: '' }) };
  } catch (e) {
    return { result: WasmResult.Ok, data: encodeResult('SignResult', { result: false, error: `Failed to sign: ${(e as Error).message}` }) };
  }
}

export function verifySignature(args: Buffer): ForeignResult {
  const a = decodeArgs<VerifySignatureArguments>('VerifySignatureArguments', args);
  if (!a) return { result: WasmResult.BadArgument };
  const key = importKey(a.public_key, a.public_key_pem, 'public');
  if (!key) return { result: WasmResult.BadArgument };
  const hash = digest(a.hash_function, key);
  let error: string;
  if (hash === undefined) error = `${a.hash_function} is not supported.`;
  else {
    let ok = false;
    try {
      ok = crypto.verify(hash, a.text, key, a.signature);
    } catch {
      // A malformed signature: not verified, as OpenSSL's EVP_DigestVerify.
    }
    error = ok ? '' : 'Failed to verify digest. Error code: 0';
  }
  return { result: WasmResult.Ok, data: encodeResult('VerifySignatureResult', { result: error === '', error }) };
}
