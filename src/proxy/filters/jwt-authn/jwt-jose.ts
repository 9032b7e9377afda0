// jose, loaded on first use (a provider's local JWKS at config time, else the first token or
// fetched JWKS): a proxy whose config has no jwt_authn filter does not carry it (0.6 MB heap).
import { createRequire } from 'node:module';
import type * as Jose from 'jose';

let mod: typeof Jose | undefined;

export function jose(): typeof Jose {
  return (mod ??= createRequire(import.meta.url)('jose') as typeof Jose);
}
