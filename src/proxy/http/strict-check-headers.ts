// The router's strict_check_headers (envoy.extensions.filters.http.router.v3.Router): the listed
// x-envoy-* request headers must hold valid values, else the request is refused with 400 and the
// IH response flag, as Envoy does, instead of the header being half-understood.
import type { Reader } from '../config/reader.ts';
import type { HeaderMap } from '../filters/filter.ts';
import { GRPC_RETRY_ON, HTTP_RETRY_ON } from './router-headers.ts';

const isInteger = (v: string): boolean => /^\d{1,19}$/.test(v);
/** A ","-separated list (no spaces) of known values. */
const retryList = (names: Readonly<Record<string, number>>) => (v: string): boolean => v.split(',').every((p) => p in names);

const CHECKS: Record<string, (v: string) => boolean> = {
  'x-envoy-upstream-rq-timeout-ms': isInteger,
  'x-envoy-upstream-rq-per-try-timeout-ms': isInteger,
  'x-envoy-max-retries': isInteger,
  'x-envoy-retry-on': retryList(HTTP_RETRY_ON),
  'x-envoy-retry-grpc-on': retryList(GRPC_RETRY_ON),
};

/** Reads strict_check_headers; a header Envoy cannot check is a config error. */
export function readStrictCheckHeaders(r: Reader): readonly string[] {
  const list = r.strs('strict_check_headers');
  list.forEach((h, i) => {
    if (!(h in CHECKS)) r.issues.error(`${r.at('strict_check_headers')}[${i}]`, `strict_check_headers cannot check "${h}"; supported: ${Object.keys(CHECKS).join(', ')}`);
  });
  return list.filter((h) => h in CHECKS);
}

/** The first checked header present with an invalid value, or undefined. */
export function invalidEnvoyHeader(headers: HeaderMap, checked: readonly string[]): { name: string; value: string } | undefined {
  for (const name of checked) {
    const raw = headers[name];
    if (raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (!CHECKS[name](value)) return { name, value };
  }
  return undefined;
}
