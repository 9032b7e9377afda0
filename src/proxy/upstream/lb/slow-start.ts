// Slow start (Envoy's slow_start_config for ROUND_ROBIN and LEAST_REQUEST; Istio's
// warmupDurationSecs): for slow_start_window after a host joins the cluster (or becomes healthy
// again), its weight is scaled by max(min_weight_percent, time_factor^(1/aggression)) with
// time_factor = max(seconds since it joined, 1) / window seconds.
import type { Host } from '../host.ts';
import { double, durationMs, object, percent, warnUnsupported, type ConfigIssues, type Json } from './config-fields.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';

export interface SlowStartConfig {
  windowMs: number;
  aggression: number;
  /** aggression.runtime_key (a RuntimeDouble): its value replaces aggression at each balancer build. */
  aggressionKey?: string;
  /** min_weight_percent as a fraction (default 0.1). */
  minWeight: number;
}

export function compileSlowStart(parent: Json | undefined, path: string, issues: ConfigIssues): SlowStartConfig | undefined {
  const p = `${path}.slow_start_config`;
  const o = object(parent?.slow_start_config, p, issues);
  if (!o) return undefined;
  warnUnsupported(o, ['slow_start_window', 'aggression', 'min_weight_percent'], p, issues);
  const windowMs = durationMs(o, 'slow_start_window', p, issues, 0);
  const ag = object(o.aggression, `${p}.aggression`, issues);
  const aggression = double(ag, 'default_value', `${p}.aggression`, issues, 1);
  if (aggression <= 0) issues.errors.push(`${p}.aggression.default_value: must be greater than 0, got ${aggression}`);
  const aggressionKey = runtimeKey(ag);
  const minWeight = percent(o, 'min_weight_percent', p, issues, 10) / 100;
  return windowMs > 0 && aggression > 0 ? { windowMs, aggression, minWeight, ...(aggressionKey && { aggressionKey }) } : undefined;
}

/** A RuntimeDouble's runtime_key, when set. */
export function runtimeKey(o: Json | undefined): string | undefined {
  const k = o?.runtime_key;
  return typeof k === 'string' && k ? k : undefined;
}

/** The config with the runtime's aggression (a value not above 0 is 1, as Envoy). */
export function resolveSlowStart(config: SlowStartConfig | undefined, runtime: EnvoyRuntime): SlowStartConfig | undefined {
  if (!config?.aggressionKey) return config;
  const v = runtime.double(config.aggressionKey, config.aggression).value;
  return { ...config, aggression: v > 0 ? v : 1 };
}

/** When each host joined (or last became healthy), across load-balancer rebuilds. */
const joined = new WeakMap<Host, number>();

/** Records join times for the cluster's hosts (called at every load-balancer build). */
export function trackJoins(hosts: readonly Host[], now: number): void {
  for (const h of hosts) {
    if (h.healthFlags !== 0) joined.delete(h);
    else if (!joined.has(h)) joined.set(h, now);
  }
}

export function anyInSlowStart(hosts: readonly Host[], config: SlowStartConfig, now: number): boolean {
  for (const h of hosts) if (slowStartFactor(h, config, now) < 1) return true;
  return false;
}

export function slowStartFactor(h: Host, config: SlowStartConfig, now: number): number {
  const t = joined.get(h);
  if (t === undefined || now - t >= config.windowMs) return 1;
  const timeFactor = Math.max((now - t) / 1000, 1) / (config.windowMs / 1000);
  return Math.max(config.minWeight, Math.pow(Math.min(1, timeFactor), 1 / config.aggression));
}
