// Envoy's response flags (the %RESPONSE_FLAGS% short names), as a bit set per stream.
// Two are never set by rig proxy: LR (Envoy's own codec resetting an upstream stream, e.g. an
// HTTP/1 upstream half-closing before the request was sent; our pools do not tell that apart from
// the upstream ending the exchange) and DF (the dynamic forward proxy's DNS failure, a filter rig
// proxy does not have; a DNS cluster whose name does not resolve has no hosts: UH, as in Envoy).
// They stay in the table so that the bit layout and the names match Envoy's.
// UR is an upstream stream reset on a live connection (HTTP/2 RST_STREAM with any code; NO_ERROR
// only before END_STREAM, see upstream/h2-reset-watch.ts), UC a connection that ended under the
// request, UPE a malformed response (also mid-body: an HTTP/2 END_STREAM short of content-length).
export const ResponseFlag = {
  FailedLocalHealthCheck: 1 << 0, // LH
  NoHealthyUpstream: 1 << 1, // UH
  UpstreamRequestTimeout: 1 << 2, // UT
  LocalReset: 1 << 3, // LR
  UpstreamRemoteReset: 1 << 4, // UR
  UpstreamConnectionFailure: 1 << 5, // UF
  UpstreamConnectionTermination: 1 << 6, // UC
  UpstreamOverflow: 1 << 7, // UO
  NoRouteFound: 1 << 8, // NR
  DelayInjected: 1 << 9, // DI
  FaultInjected: 1 << 10, // FI
  RateLimited: 1 << 11, // RL
  UnauthorizedExternalService: 1 << 12, // UAEX
  RateLimitServiceError: 1 << 13, // RLSE
  DownstreamConnectionTermination: 1 << 14, // DC
  UpstreamRetryLimitExceeded: 1 << 15, // URX
  StreamIdleTimeout: 1 << 16, // SI
  InvalidEnvoyRequestHeaders: 1 << 17, // IH
  DownstreamProtocolError: 1 << 18, // DPE
  UpstreamMaxStreamDurationReached: 1 << 19, // UMSDR
  ResponseFromCacheFilter: 1 << 20, // RFCF
  NoFilterConfigFound: 1 << 21, // NFCF
  DurationTimeout: 1 << 22, // DT
  UpstreamProtocolError: 1 << 23, // UPE
  NoClusterFound: 1 << 24, // NC
  OverloadManager: 1 << 25, // OM
  DnsResolutionFailed: 1 << 26, // DF
  DropOverLoad: 1 << 27, // DO
} as const;

export type ResponseFlagName = keyof typeof ResponseFlag;

const SHORT: [number, string][] = [
  [ResponseFlag.FailedLocalHealthCheck, 'LH'],
  [ResponseFlag.NoHealthyUpstream, 'UH'],
  [ResponseFlag.UpstreamRequestTimeout, 'UT'],
  [ResponseFlag.LocalReset, 'LR'],
  [ResponseFlag.UpstreamRemoteReset, 'UR'],
  [ResponseFlag.UpstreamConnectionFailure, 'UF'],
  [ResponseFlag.UpstreamConnectionTermination, 'UC'],
  [ResponseFlag.UpstreamOverflow, 'UO'],
  [ResponseFlag.NoRouteFound, 'NR'],
  [ResponseFlag.DelayInjected, 'DI'],
  [ResponseFlag.FaultInjected, 'FI'],
  [ResponseFlag.RateLimited, 'RL'],
  [ResponseFlag.UnauthorizedExternalService, 'UAEX'],
  [ResponseFlag.RateLimitServiceError, 'RLSE'],
  [ResponseFlag.DownstreamConnectionTermination, 'DC'],
  [ResponseFlag.UpstreamRetryLimitExceeded, 'URX'],
  [ResponseFlag.StreamIdleTimeout, 'SI'],
  [ResponseFlag.InvalidEnvoyRequestHeaders, 'IH'],
  [ResponseFlag.DownstreamProtocolError, 'DPE'],
  [ResponseFlag.UpstreamMaxStreamDurationReached, 'UMSDR'],
  [ResponseFlag.ResponseFromCacheFilter, 'RFCF'],
  [ResponseFlag.NoFilterConfigFound, 'NFCF'],
  [ResponseFlag.DurationTimeout, 'DT'],
  [ResponseFlag.UpstreamProtocolError, 'UPE'],
  [ResponseFlag.NoClusterFound, 'NC'],
  [ResponseFlag.OverloadManager, 'OM'],
  [ResponseFlag.DnsResolutionFailed, 'DF'],
  [ResponseFlag.DropOverLoad, 'DO'],
];

const cache = new Map<number, string>();

/** Envoy's %RESPONSE_FLAGS% text: short names joined by ",", or "-" when none (cached per bit set). */
export function formatResponseFlags(flags: number): string {
  let s = cache.get(flags);
  if (s === undefined) {
    s = SHORT.filter(([bit]) => flags & bit).map(([, name]) => name).join(',') || '-';
    cache.set(flags, s);
  }
  return s;
}
