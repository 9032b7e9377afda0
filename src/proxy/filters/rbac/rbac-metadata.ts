// Envoy's MetadataMatcher (envoy.type.matcher.v3): a path into one filter's dynamic metadata and a
// ValueMatcher (null/double/string/bool/present/list/or), with invert.
import type { Reader } from '../../config/reader.ts';
import { readStringMatcher } from '../../routing/string-matcher.ts';

type ValueTest = (v: unknown) => boolean;

function readValueMatcher(r: Reader): ValueTest {
  let t: ValueTest = () => false;
  if (r.has('null_match')) {
    r.get('null_match');
    t = (v) => v === null;
  } else if (r.has('double_match')) {
    const d = r.obj('double_match')!;
    if (d.has('exact')) {
      const e = d.num('exact', 0);
      t = (v) => typeof v === 'number' && v === e;
    } else {
      const range = d.obj('range');
      const start = range?.num('start', -Infinity) ?? -Infinity;
      const end = range?.num('end', Infinity) ?? Infinity;
      range?.done();
      t = (v) => typeof v === 'number' && v >= start && v < end;
    }
    d.done();
  } else if (r.has('string_match')) {
    const m = readStringMatcher(r.obj('string_match')!);
    t = (v) => typeof v === 'string' && m.match(v);
  } else if (r.has('bool_match')) {
    const b = r.bool('bool_match', false);
    t = (v) => v === b;
  } else if (r.has('present_match')) {
    const p = r.bool('present_match', false);
    t = (v) => (v !== undefined) === p;
  } else if (r.has('list_match')) {
    const l = r.obj('list_match')!;
    const one = l.obj('one_of');
    const inner = one ? readValueMatcher(one) : () => false;
    if (!one) l.issues.error(l.path, 'list_match needs one_of');
    l.done();
    t = (v) => Array.isArray(v) && v.some(inner);
  } else if (r.has('or_match')) {
    const o = r.obj('or_match')!;
    const ms = o.objs('value_matchers').map(readValueMatcher);
    o.done();
    t = (v) => ms.some((m) => m(v));
  } else {
    r.issues.error(r.path, 'a value matcher needs one of null_match, double_match, string_match, bool_match, present_match, list_match, or_match');
  }
  r.done();
  return t;
}

/** Compiles a MetadataMatcher into a test over dynamic metadata keyed by filter name. */
export function readMetadataMatcher(r: Reader): (md: Readonly<Record<string, unknown>>) => boolean {
  const filter = r.str('filter');
  const path = r.objs('path').map((p) => {
    const k = p.str('key');
    p.done();
    return k;
  });
  const valueR = r.obj('value');
  const test = valueR ? readValueMatcher(valueR) : () => false;
  if (!valueR) r.issues.error(r.at('value'), 'a metadata matcher needs a value');
  const invert = r.bool('invert', false);
  r.done();
  return (md) => {
    let v: unknown = md[filter];
    for (const k of path) v = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
    // Envoy: a missing value only matches present_match: false (and inverted matchers).
    return test(v) !== invert;
  };
}
