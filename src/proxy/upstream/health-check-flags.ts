// Host health flags as Envoy's admin /clusters prints them ("health_flags::/failed_active_hc"),
// in Envoy's order; "healthy" when no flag is set.
import { HealthFlag, type Host } from './host.ts';

const NAMES: readonly [number, string][] = [
  [HealthFlag.FailedActiveHc, '/failed_active_hc'],
  [HealthFlag.FailedOutlierCheck, '/failed_outlier_check'],
  [HealthFlag.FailedEdsHealth, '/failed_eds_health'],
  [HealthFlag.DegradedEdsHealth, '/degraded_eds_health'],
  [HealthFlag.PendingActiveHc, '/pending_active_hc'],
];

export function healthFlagsString(host: Pick<Host, 'healthFlags'>): string {
  if (host.healthFlags === 0) return 'healthy';
  let s = '';
  for (const [bit, name] of NAMES) if (host.healthFlags & bit) s += name;
  return s;
}
