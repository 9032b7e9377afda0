// istiod's feature switches (Istio's pkg/features): environment variables of the control plane
// process, read once, the first time the control plane starts or a translator asks.
import { RigError } from '../core/errors.ts';

/** A boolean environment variable as istiod reads its features (Go's strconv.ParseBool). */
export function envBool(name: string, fallback: boolean): boolean {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new RigError('MESH_ERR_USAGE', `environment variable ${name}="${v}" is not a boolean: use true or false`);
}

const DURATION_UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration environment variable in milliseconds, as istiod reads one (Go's time.ParseDuration: 100ms, 1.5s, 1m30s, 0); negative is refused. */
export function envDurationMs(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  if (v === '0') return 0;
  let ms = 0;
  let consumed = 0;
  for (const m of v.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy)) {
    ms += Number(m[1]) * DURATION_UNIT_MS[m[2]];
    consumed += m[0].length;
  }
  if (consumed === 0 || consumed !== v.length) throw new RigError('MESH_ERR_USAGE', `environment variable ${name}="${v}" is not a duration: use one such as 100ms, 1s or 1m30s`);
  return ms;
}

export interface PilotFeatures {
  /**
   * PILOT_HTTP10 (default false): every HTTP connection manager accepts HTTP/1.0, as node
   * metadata HTTP10 does for one proxy, and protocol sniffing sends http/1.0 to the HTTP chain.
   */
  readonly http10: boolean;
  /**
   * PILOT_SIDECAR_USE_REMOTE_ADDRESS (default false): sidecar outbound HCMs set use_remote_address,
   * so the sender (the local app, an internal address) keeps its trusted x-envoy-* headers, as in
   * Istio. Not the explicit-mode http_proxy listener, which istiod builds with it off.
   */
  readonly sidecarUseRemoteAddress: boolean;
  /** PILOT_DEBOUNCE_AFTER (default 100ms): the quiet period after the last change before a push. */
  readonly debounceAfterMs: number;
  /** PILOT_DEBOUNCE_MAX (default 10s): the longest a push waits while changes keep coming. */
  readonly debounceMaxMs: number;
  /**
   * PILOT_ENABLE_EDS_DEBOUNCE (default true): false pushes endpoint changes at once, on their own;
   * pending config changes keep their debounce, and so does an endpoint change istiod pushes in
   * full (a service's set of service accounts changed: its clients' SANs, in CDS).
   */
  readonly edsDebounce: boolean;
  /** PILOT_DNS_JITTER_DURATION (default 100ms): dns_jitter of every DNS cluster (0: none). */
  readonly dnsJitterMs: number;
}

let features: PilotFeatures | undefined;

/** The control plane's features; a malformed value throws (startControlPlane reads them first, before listening). */
export function pilotFeatures(): PilotFeatures {
  features ??= Object.freeze({
    http10: envBool('PILOT_HTTP10', false),
    sidecarUseRemoteAddress: envBool('PILOT_SIDECAR_USE_REMOTE_ADDRESS', false),
    debounceAfterMs: envDurationMs('PILOT_DEBOUNCE_AFTER', 100),
    debounceMaxMs: envDurationMs('PILOT_DEBOUNCE_MAX', 10_000),
    edsDebounce: envBool('PILOT_ENABLE_EDS_DEBOUNCE', true),
    dnsJitterMs: envDurationMs('PILOT_DNS_JITTER_DURATION', 100),
  });
  return features;
}
