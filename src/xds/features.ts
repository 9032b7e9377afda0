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
}

let features: PilotFeatures | undefined;

/** The control plane's features; a malformed value throws (startControlPlane reads them first, before listening). */
export function pilotFeatures(): PilotFeatures {
  features ??= Object.freeze({ http10: envBool('PILOT_HTTP10', false), sidecarUseRemoteAddress: envBool('PILOT_SIDECAR_USE_REMOTE_ADDRESS', false) });
  return features;
}
