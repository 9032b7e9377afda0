// re2js, loaded with the first pattern that needs it (RE2-only syntax in a safe_regex, a hash
// policy's regex_rewrite): most configs have none, and its 260 KB of source stay off the heap.
import { createRequire } from 'node:module';
import type * as Re2js from 're2js';

let mod: typeof Re2js | undefined;

export function re2(): typeof Re2js.RE2JS {
  return (mod ??= createRequire(import.meta.url)('re2js') as typeof Re2js).RE2JS;
}
