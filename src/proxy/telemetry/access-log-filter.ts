// Envoy's AccessLogFilter (AccessLog.filter): extension_filter with a CEL expression (Istio's
// Telemetry accessLogging.filter.expression, e.g. `response.code >= 400`), status_code_filter,
// duration_filter (their value a RuntimeUInt32), runtime_filter, response_flag_filter,
// header_filter, not_health_check_filter, traceable_filter, and/or.
import type { Reader } from '../config/reader.ts';
import { NEVER, readFractionalPercent } from '../config/fractional-percent.ts';
import { NO_RUNTIME, type EnvoyRuntime } from '../envoy-runtime/index.ts';
import type { RequestHead, ResponseHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { formatResponseFlags } from '../response-flags.ts';
import { compileCel } from './cel-attributes.ts';
import { readHeaderMatcher } from '../routing/header-matcher.ts';

export type LogPredicate = (info: StreamInfo, req: RequestHead | undefined, res: ResponseHead | undefined) => boolean;

export const CEL_FILTER_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter';

const UINT32_MAX = 0xffff_ffff;

function comparison(r: Reader | undefined, get: (i: StreamInfo) => number, runtime: EnvoyRuntime): LogPredicate {
  const op = r?.str('op', 'EQ') ?? 'EQ';
  const v = r?.obj('value');
  const def = v?.num('default_value', 0) ?? 0;
  const key = v?.str('runtime_key') ?? '';
  v?.done();
  r?.done();
  // RuntimeUInt32: the key's value (when a layer sets it), else default_value.
  const value = runtime.uint(key, def, UINT32_MAX);
  if (op === 'GE') return (i) => get(i) >= value.value;
  if (op === 'LE') return (i) => get(i) <= value.value;
  if (op !== 'EQ') r?.issues.error(r.at('op'), `comparison op must be EQ, GE or LE, got ${op}`);
  return (i) => get(i) === value.value;
}

/**
 * runtime_filter: logs when featureEnabled(runtime_key, percent_sampled (0% when unset)) draws true.
 * The draw comes from the request id (its first 8 hex digits, as Envoy's UUID request ids give
 * it) unless use_independent_randomness or the stream has none.
 */
function runtimeFilter(r: Reader, runtime: EnvoyRuntime): LogPredicate {
  const key = r.str('runtime_key');
  if (!key) r.issues.error(r.at('runtime_key'), 'a runtime_filter needs a runtime_key');
  const p = runtime.fraction(key, readFractionalPercent(r.obj('percent_sampled'), NEVER));
  const independent = r.bool('use_independent_randomness', false);
  r.done();
  return (i) => {
    const id = independent ? undefined : i.requestId;
    const n = id ? parseInt(id.slice(0, 8), 16) : NaN;
    const draw = Number.isNaN(n) ? Math.floor(Math.random() * p.denominator) : n % p.denominator;
    return draw < p.numerator;
  };
}

export function compileLogFilter(r: Reader, runtime: EnvoyRuntime = NO_RUNTIME): LogPredicate {
  const keys = Object.keys(r.raw);
  if (keys.length !== 1) {
    r.issues.error(r.path, `an access log filter has exactly one of its filter fields, got ${keys.join(', ') || 'none'}`);
    return () => true;
  }
  const key = keys[0];
  switch (key) {
    case 'extension_filter': {
      const e = r.obj(key)!;
      const tc = e.obj('typed_config');
      // The filter is chosen by typed_config's type, as Envoy's; the name only labels it.
      e.accept('name');
      e.done();
      if (tc?.str('@type') !== CEL_FILTER_TYPE) {
        r.issues.error(e.at('typed_config'), `unsupported access log extension filter ${tc?.str('@type') ?? '(none)'}; supported: ${CEL_FILTER_TYPE}`);
        return () => true;
      }
      const expr = tc.str('expression');
      tc.done();
      try {
        const p = compileCel(expr);
        return (i, req, res) => {
          try {
            return p(i, req, res) === true;
          } catch {
            return false; // Envoy: an expression that fails to evaluate does not log.
          }
        };
      } catch (err) {
        r.issues.error(tc.at('expression'), `invalid CEL expression ${JSON.stringify(expr)}: ${(err as Error).message}`);
        return () => true;
      }
    }
    case 'status_code_filter':
      return comparison(r.obj(key)!.obj('comparison'), (i) => i.responseCode, runtime);
    case 'duration_filter':
      return comparison(r.obj(key)!.obj('comparison'), (i) => i.durationMs ?? 0, runtime);
    case 'runtime_filter':
      return runtimeFilter(r.obj(key)!, runtime);
    case 'response_flag_filter': {
      const f = r.obj(key)!;
      const flags = new Set(f.strs('flags'));
      f.done();
      if (!flags.size) return (i) => i.responseFlags !== 0;
      return (i) => formatResponseFlags(i.responseFlags).split(',').some((x) => flags.has(x));
    }
    case 'header_filter': {
      const f = r.obj(key)!;
      const h = f.obj('header');
      if (!h) f.issues.error(f.at('header'), 'a header_filter needs a header matcher');
      const m = h ? readHeaderMatcher(h) : undefined;
      f.done();
      return (_i, req) => req !== undefined && m !== undefined && m.match(req);
    }
    case 'not_health_check_filter':
      r.accept(key);
      return (i) => i.healthCheck !== true;
    case 'traceable_filter':
      r.accept(key);
      return (i) => i.sampled === true;
    case 'and_filter':
    case 'or_filter': {
      const f = r.obj(key)!;
      const subs = f.objs('filters').map((x) => compileLogFilter(x, runtime));
      f.done();
      return key === 'and_filter' ? (i, q, s) => subs.every((p) => p(i, q, s)) : (i, q, s) => subs.some((p) => p(i, q, s));
    }
  }
  r.issues.error(r.at(key), `unsupported access log filter ${key}; supported: extension_filter (CEL), status_code_filter, duration_filter, runtime_filter, response_flag_filter, header_filter, not_health_check_filter, traceable_filter, and_filter, or_filter`);
  r.accept(key);
  return () => true;
}
