// Envoy's StringMatcher and RegexMatcher, compiled once. safe_regex is RE2 syntax: JS RegExp
// runs it when the pattern means the same in both (the common case, and much faster); patterns
// RegExp rejects go to re2js, Google's RE2 ported to JS.
import { re2 } from './re2.ts';
import type { Issues, Reader } from '../config/reader.ts';

export interface Regex {
  readonly source: string;
  /** Whole-string match (Envoy's safe_regex semantics). */
  full(s: string): boolean;
  /** First match anywhere, as [index, length], or undefined. */
  find(s: string): [number, number] | undefined;
  replaceAll(s: string, substitution: string): string;
}

const RE2_ONLY = /\\[pPQEzCX]|\(\?P<|\(\?[imsU]*-|\\A/;

export function compileRegex(pattern: string, path: string, issues: Issues, caseInsensitive = false): Regex | undefined {
  if (!RE2_ONLY.test(pattern)) {
    try {
      const flags = caseInsensitive ? 'i' : '';
      const whole = new RegExp(`^(?:${pattern})$`, flags);
      const any = new RegExp(pattern, flags + 'g');
      return {
        source: pattern,
        full: (s) => whole.test(s),
        find(s) {
          any.lastIndex = 0;
          const m = any.exec(s);
          return m ? [m.index, m[0].length] : undefined;
        },
        // RE2 substitutions use \1; JS uses $1.
        replaceAll: (s, sub) => s.replace(any, sub.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1')),
      };
    } catch {
      // fall through to RE2
    }
  }
  try {
    const RE2JS = re2();
    const re = RE2JS.compile(pattern, caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0);
    return {
      source: pattern,
      full: (s) => re.matches(s),
      find(s) {
        const m = re.matcher(s);
        return m.find() ? [m.start(), m.end() - m.start()] : undefined;
      },
      replaceAll: (s, sub) => re.matcher(s).replaceAll(sub.replace(/\\(\d)/g, '$$$1')),
    };
  } catch (e) {
    issues.error(path, `invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`);
    return undefined;
  }
}

/** Reads a RegexMatcher ({ regex, google_re2? }). */
export function readRegexMatcher(r: Reader, caseInsensitive = false): Regex | undefined {
  const re = compileRegex(r.str('regex'), r.at('regex'), r.issues, caseInsensitive);
  // Deprecated and without effect in Envoy too (its max_program_size is no longer enforced); regexes are RE2 here as well.
  r.accept('google_re2');
  r.done();
  return re;
}

export interface StringMatcher {
  match(v: string): boolean;
}

const MATCH_ALL: StringMatcher = { match: () => true };

/** Compiles an Envoy StringMatcher (exact, prefix, suffix, contains, safe_regex; ignore_case). */
export function readStringMatcher(r: Reader): StringMatcher {
  const ic = r.bool('ignore_case', false);
  const norm = ic ? (s: string) => s.toLowerCase() : (s: string) => s;
  let m: StringMatcher | undefined;
  const kinds = ['exact', 'prefix', 'suffix', 'contains', 'safe_regex'].filter((k) => r.has(k));
  if (kinds.length !== 1) r.issues.error(r.path, `a string matcher needs exactly one of exact, prefix, suffix, contains, safe_regex (got ${kinds.join(', ') || 'none'})`);
  if (r.has('exact')) {
    const v = norm(r.str('exact'));
    m = ic ? { match: (s) => s.toLowerCase() === v } : { match: (s) => s === v };
  } else if (r.has('prefix')) {
    const v = norm(r.str('prefix'));
    m = { match: (s) => norm(s).startsWith(v) };
  } else if (r.has('suffix')) {
    const v = norm(r.str('suffix'));
    m = { match: (s) => norm(s).endsWith(v) };
  } else if (r.has('contains')) {
    const v = norm(r.str('contains'));
    m = { match: (s) => norm(s).includes(v) };
  } else if (r.has('safe_regex')) {
    const re = readRegexMatcher(r.obj('safe_regex')!, ic);
    if (re) m = { match: (s) => re.full(s) };
  }
  r.done();
  return m ?? MATCH_ALL;
}
