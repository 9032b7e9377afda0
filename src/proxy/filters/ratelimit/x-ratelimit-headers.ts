// x-ratelimit-limit / -remaining / -reset (draft-polli-ratelimit-headers-03) from the rate limit
// service's descriptor statuses, as Envoy's XRateLimitHeaderUtils: the status with the fewest
// requests remaining gives the three values; x-ratelimit-limit lists after it every limit's quota
// policy (`10, 10;w=60;name="per-ip", 1000;w=3600`). Statuses without a current_limit are skipped.
import type { HeaderPair, DescriptorStatus } from './ratelimit-service.ts';

const WINDOW_SECONDS: Readonly<Record<string, number>> = {
  SECOND: 1,
  MINUTE: 60,
  HOUR: 3600,
  DAY: 86_400,
  WEEK: 604_800,
  MONTH: 2_592_000,
  YEAR: 31_536_000,
};

/** Whole seconds of a proto JSON duration ("30s", "1.500s"). */
function seconds(d: string | undefined): number {
  return d ? Math.trunc(parseFloat(d)) || 0 : 0;
}

export function xRateLimitHeaders(statuses: readonly DescriptorStatus[]): HeaderPair[] {
  let min: DescriptorStatus | undefined;
  let policy = '';
  for (const s of statuses) {
    const limit = s.current_limit;
    if (!limit) continue;
    if (!min || (s.limit_remaining ?? 0) < (min.limit_remaining ?? 0)) min = s;
    const window = WINDOW_SECONDS[limit.unit ?? ''];
    if (!window) continue;
    policy += `, ${limit.requests_per_unit ?? 0};w=${window}`;
    if (limit.name) policy += `;name="${limit.name}"`;
  }
  if (!min) return [];
  return [
    ['x-ratelimit-limit', `${min.current_limit!.requests_per_unit ?? 0}${policy}`],
    ['x-ratelimit-remaining', String(min.limit_remaining ?? 0)],
    ['x-ratelimit-reset', String(seconds(min.duration_until_reset))],
  ];
}
