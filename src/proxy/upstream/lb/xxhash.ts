// xxHash64 (seed 0 unless given), the hash Envoy uses for hash policies, ring hash and maglev, so
// that a Rigging proxy and an Envoy place the same keys on the same hosts. xxhash-wasm is the
// implementation @grpc/grpc-js-xds uses too; the WebAssembly module is instantiated once at import.
import xxhash from 'xxhash-wasm';

const api = await xxhash();

export const UINT64_MASK = (1n << 64n) - 1n;

export function xxHash64(input: string, seed: bigint = 0n): bigint {
  return api.h64(input, seed);
}

/** Envoy's hash of a list of values: each value hashed with the previous hash as seed. */
export function xxHash64List(values: readonly string[]): bigint {
  let hash = 0n;
  for (const v of values) hash = api.h64(v, hash);
  return hash;
}
