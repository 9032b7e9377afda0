// A copy of a string that keeps only its own characters. V8 makes a slice of 13 characters or
// more a view into the string it was cut from (a SlicedString), and a concatenation a pair of its
// parts (a ConsString): either keeps the whole original alive as long as the result lives. What
// outlives its request (a span waiting for its export) should not keep the request's head, or
// the 8 KB pool its trace id was cut from (telemetry/trace-context.ts). Slicing a concatenation
// makes V8 flatten it into a new string first, so the result views that new string only.
// Shorter strings are always copies already.

const MIN_VIEW_LENGTH = 13;

export function detachedString(s: string): string {
  return s.length < MIN_VIEW_LENGTH ? s : (' ' + s).slice(1);
}
