// envoy.extensions.filters.http.csrf.v3.CsrfPolicy (the filter's config and its per-route override)
// and the origin comparison of Envoy's CSRF filter: the source origin (Origin, else Referer) and the
// target origin (the request's authority) compared as host[:port], the scheme left out, the port as
// written (no default port added or removed).
import type { Reader } from '../../config/reader.ts';
import { NEVER, readRuntimeFractionalPercent, type FractionalPercent } from '../../config/fractional-percent.ts';
import { readStringMatcher, type StringMatcher } from '../../routing/string-matcher.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';

export interface CsrfPolicy {
  readonly filterEnabled: FractionalPercent;
  readonly shadowEnabled: FractionalPercent;
  /** Source origins (host[:port]) accepted besides the target's. */
  readonly additionalOrigins: readonly StringMatcher[];
}

export function readCsrfPolicy(r: Reader, runtime: EnvoyRuntime): CsrfPolicy {
  if (!r.has('filter_enabled')) r.issues.error(r.at('filter_enabled'), 'filter_enabled is required (a RuntimeFractionalPercent; default_value 0 checks nothing)');
  const policy: CsrfPolicy = {
    filterEnabled: readRuntimeFractionalPercent(r.obj('filter_enabled'), NEVER, runtime),
    shadowEnabled: readRuntimeFractionalPercent(r.obj('shadow_enabled'), NEVER, runtime),
    additionalOrigins: r.objs('additional_origins').map((m) => readStringMatcher(m)),
  };
  r.done();
  return policy;
}

const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^@/?#]*@)?([^/?#]+)/;

/**
 * Envoy's hostAndPort: the authority of an absolute URL ("https://a.example:8443/x" → "a.example:8443"),
 * a value that is not one as it is (e.g. Origin: null), '' when absent.
 */
export function hostAndPort(value: string | undefined): string {
  if (!value) return '';
  const m = ABSOLUTE_URL.exec(value);
  return m ? m[1] : value;
}

/** Whether the source origin is the target's or one of the policy's additional origins. */
export function originValid(p: CsrfPolicy, source: string, target: string): boolean {
  if (source === target) return true;
  for (const m of p.additionalOrigins) if (m.match(source)) return true;
  return false;
}
