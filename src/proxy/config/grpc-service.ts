// Envoy's GrpcService (config.core.v3.GrpcService) for services the proxy calls on its own behalf
// (ext_authz's check, the rate limit service): envoy_grpc only, calls go through one of the proxy's
// clusters (src/proxy/upstream/cluster-grpc.ts makes them).
import type { Reader } from './reader.ts';

export interface GrpcServiceConfig {
  readonly kind: 'grpc';
  readonly cluster: string;
  readonly authority: string;
  readonly timeoutMs: number;
  readonly initialMetadata: readonly (readonly [string, string])[];
  /** envoy_grpc.max_receive_message_length: a longer response message fails the call; 0: no limit. */
  readonly maxReceiveBytes: number;
  /** envoy_grpc.skip_envoy_headers: the call carries no x-envoy-internal / x-forwarded-for. */
  readonly skipEnvoyHeaders: boolean;
}

/** HeaderValue list (key, and value or raw_value: bytes, base64 in JSON, kept as latin1 so each char is a byte). */
export function headerValues(list: Reader[]): [string, string][] {
  return list.map((h) => {
    const key = h.str('key').toLowerCase();
    let value = h.str('value');
    if (h.has('raw_value')) {
      if (h.has('value')) h.issues.error(h.path, 'only one of value and raw_value can be set');
      value = Buffer.from(h.str('raw_value'), 'base64').toString('latin1');
    }
    h.done();
    if (!key) h.issues.error(h.at('key'), 'a header needs a key');
    return [key, value];
  });
}

/**
 * Reads a GrpcService. `purpose` names the call in warnings ("authorization", "rate limit").
 * `defaultTimeoutMs` applies when grpc_service.timeout is unset; undefined when the caller's own
 * config has the timeout (the rate limit filter's `timeout`): then grpc_service.timeout is unused,
 * as in Envoy, and set gets a warning.
 */
export function readGrpcService(r: Reader, purpose: string, defaultTimeoutMs: number | undefined): GrpcServiceConfig {
  const eg = r.obj('envoy_grpc');
  if (r.has('google_grpc')) r.issues.error(r.at('google_grpc'), 'google_grpc is not supported by rig proxy; use envoy_grpc (calls go through a cluster)');
  r.accept('google_grpc');
  const cluster = eg?.str('cluster_name') ?? '';
  const authority = eg?.str('authority') || cluster;
  const maxReceiveBytes = eg?.num('max_receive_message_length', 0) ?? 0;
  const skipEnvoyHeaders = eg?.bool('skip_envoy_headers', false) ?? false;
  const notRetried = `the ${purpose} call is not retried by rig proxy; ignored`;
  if (eg?.has('retry_policy')) eg.issues.warn(eg.at('retry_policy'), notRetried);
  eg?.accept('retry_policy');
  eg?.done();
  if (!eg && !r.has('google_grpc')) r.issues.error(r.path, 'grpc_service needs envoy_grpc.cluster_name');
  else if (eg && !cluster) r.issues.error(r.at('envoy_grpc.cluster_name'), 'required');
  const timeoutMs = r.durationMs('timeout', 0);
  if (defaultTimeoutMs === undefined && r.has('timeout')) r.issues.warn(r.at('timeout'), `not used for the ${purpose} call (as in Envoy): the filter's own timeout applies`);
  const initialMetadata = headerValues(r.objs('initial_metadata'));
  if (r.has('retry_policy')) r.issues.warn(r.at('retry_policy'), notRetried);
  r.accept('retry_policy');
  r.done();
  return { kind: 'grpc', cluster, authority, timeoutMs: timeoutMs > 0 && defaultTimeoutMs !== undefined ? timeoutMs : (defaultTimeoutMs ?? 0), initialMetadata, maxReceiveBytes, skipEnvoyHeaders };
}
