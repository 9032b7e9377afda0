// Envoy's HeaderMatcher and QueryParameterMatcher, compiled once per route config.
import type { Reader } from '../config/reader.ts';
import type { RequestHead } from '../filters/filter.ts';
import { readRegexMatcher, readStringMatcher, type StringMatcher } from './string-matcher.ts';

export interface HeaderMatcher {
  match(head: RequestHead): boolean;
}

/** The value of a header as Envoy's matchers see it: pseudo headers, repeated values joined by ",". */
export function headerValue(head: RequestHead, name: string): string | undefined {
  switch (name) {
    case ':method':
      return head.method;
    case ':path':
      return head.path;
    case ':authority':
    case 'host':
      return head.authority;
    case ':scheme':
      return head.scheme;
  }
  const v = head.headers[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
}

export function readHeaderMatcher(r: Reader): HeaderMatcher {
  const name = r.str('name').toLowerCase();
  if (!name) r.issues.error(r.at('name'), 'a header matcher needs a name');
  const invert = r.bool('invert_match', false);
  const missingAsEmpty = r.bool('treat_missing_header_as_empty', false);
  let test: (v: string) => boolean;
  let presentOnly: boolean | undefined;
  if (r.has('exact_match')) {
    const e = r.str('exact_match');
    test = (v) => v === e;
  } else if (r.has('prefix_match')) {
    const p = r.str('prefix_match');
    test = (v) => v.startsWith(p);
  } else if (r.has('suffix_match')) {
    const s = r.str('suffix_match');
    test = (v) => v.endsWith(s);
  } else if (r.has('contains_match')) {
    const s = r.str('contains_match');
    test = (v) => v.includes(s);
  } else if (r.has('safe_regex_match')) {
    const re = readRegexMatcher(r.obj('safe_regex_match')!);
    test = (v) => re?.full(v) ?? false;
  } else if (r.has('range_match')) {
    const rr = r.obj('range_match')!;
    const start = rr.num('start', 0);
    const end = rr.num('end', 0);
    rr.done();
    test = (v) => {
      if (!/^-?\d+$/.test(v)) return false;
      const n = Number(v);
      return n >= start && n < end;
    };
  } else if (r.has('string_match')) {
    const sm: StringMatcher = readStringMatcher(r.obj('string_match')!);
    test = (v) => sm.match(v);
  } else if (r.has('present_match')) {
    presentOnly = r.bool('present_match', true);
    test = () => true;
  } else {
    presentOnly = true;
    test = () => true;
  }
  r.done();
  if (presentOnly !== undefined) {
    const want = presentOnly;
    return { match: (head) => ((headerValue(head, name) !== undefined) === want) !== invert };
  }
  return {
    match(head) {
      let v = headerValue(head, name);
      if (v === undefined) {
        if (!missingAsEmpty) return false;
        v = '';
      }
      return test(v) !== invert;
    },
  };
}

export interface QueryMatcher {
  match(query: URLSearchParams): boolean;
}

export function readQueryMatcher(r: Reader): QueryMatcher {
  const name = r.str('name');
  if (!name) r.issues.error(r.at('name'), 'a query parameter matcher needs a name');
  let m: QueryMatcher;
  if (r.has('string_match')) {
    const sm = readStringMatcher(r.obj('string_match')!);
    m = {
      match(q) {
        const v = q.get(name);
        return v !== null && sm.match(v);
      },
    };
  } else {
    const present = r.bool('present_match', true);
    m = { match: (q) => q.has(name) === present };
  }
  r.done();
  return m;
}
