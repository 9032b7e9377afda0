// Subject alt name matchers of a CertificateValidationContext (match_typed_subject_alt_names, and
// the deprecated match_subject_alt_names that match any SAN type), shared by the TLS contexts and
// the validation secrets they can take them from (SDS).
import type { Reader } from '../config/reader.ts';
import { readStringMatcher, type StringMatcher } from '../routing/string-matcher.ts';

export interface SanMatcher {
  readonly type: 'URI' | 'DNS' | 'EMAIL' | 'IP_ADDRESS' | 'ANY';
  readonly matcher: StringMatcher;
}

/** Reads the SAN matchers of a validation context (the caller closes `v`). */
export function readSanMatchers(v: Reader): SanMatcher[] {
  const sans: SanMatcher[] = [];
  for (const m of v.objs('match_typed_subject_alt_names')) {
    const t = m.str('san_type', 'SAN_TYPE_UNSPECIFIED');
    const mr = m.obj('matcher');
    if (!mr) m.issues.error(m.at('matcher'), 'missing matcher');
    else sans.push({ type: (t === 'SAN_TYPE_UNSPECIFIED' ? 'ANY' : t) as SanMatcher['type'], matcher: readStringMatcher(mr) });
    m.done();
  }
  for (const m of v.objs('match_subject_alt_names')) sans.push({ type: 'ANY', matcher: readStringMatcher(m) });
  return sans;
}
