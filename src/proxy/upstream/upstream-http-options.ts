// A cluster's Http1ProtocolOptions and Http2ProtocolOptions (in HttpProtocolOptions'
// explicit_http_config, use_downstream_protocol_config and auto_config, or the Cluster's own
// deprecated fields) as the upstream side applies them. HTTP/2: max_concurrent_streams (Istio's
// DestinationRule http.maxConcurrentStreams) and the flow-control windows go to undici's pool.
// Fields that only concern a server (downstream) connection have no upstream effect in Envoy
// either; the remaining ones rig cannot apply are warned about when set to anything but Envoy's
// default, so the empty messages a control plane sends stay quiet.
import type { Reader } from '../config/reader.ts';
import { readHeaderKeyFormat, type HeaderKeyFormat } from '../http/h1/header-case.ts';

export interface UpstreamH1Options {
  /** enable_trailers: response trailers pass. */
  readonly enableTrailers: boolean;
  /** header_key_format: names of requests written proper-cased, or responses' case recorded (preserve_case). */
  readonly headerKeyFormat?: HeaderKeyFormat;
}

export interface UpstreamH2Options {
  readonly maxConcurrentStreams?: number;
  readonly initialWindowSize?: number;
  readonly connectionWindowSize?: number;
}

const UNSUPPORTED = 'is not supported by rig proxy upstream and is ignored';

/** Warns about `key` when it is set to anything but `def` (a bool or number, wrapped or not). */
function warnUnlessDefault(r: Reader, key: string, def: boolean | number): void {
  if (!r.has(key)) return;
  const v = typeof def === 'boolean' ? r.bool(key, def) : r.num(key, def);
  if (v !== def) r.issues.warn(r.at(key), `${key}: ${String(v)} ${UNSUPPORTED} (only ${String(def)}, Envoy's default)`);
}

/** Http1ProtocolOptions of an upstream connection: enable_trailers and header_key_format; other non-default values warned. */
export function readUpstreamHttp1Options(r: Reader | undefined): UpstreamH1Options {
  if (!r) return { enableTrailers: false };
  // Server-side options: no effect on a connection Envoy opens either.
  r.accept('allow_absolute_url', 'accept_http_10', 'default_host_for_http_10', 'override_stream_error_on_invalid_http_message', 'ignore_http_11_upgrade', 'use_balsa_parser', 'allow_custom_methods');
  const headerKeyFormat = readHeaderKeyFormat(r.obj('header_key_format'));
  const enableTrailers = r.bool('enable_trailers', false);
  warnUnlessDefault(r, 'allow_chunked_length', false);
  warnUnlessDefault(r, 'send_fully_qualified_url', false);
  r.done();
  return { enableTrailers, headerKeyFormat };
}

/** Envoy's bounds for a window size. */
function windowSize(r: Reader, key: string): number | undefined {
  if (!r.has(key)) return undefined;
  const v = r.num(key, 0);
  if (Number.isInteger(v) && v >= 65535 && v <= 2147483647) return v;
  r.issues.error(r.at(key), `must be an integer in [65535, 2147483647] (got ${String(v)})`);
  return undefined;
}

/** Http2ProtocolOptions of an upstream connection. */
export function readUpstreamH2Options(r: Reader | undefined): UpstreamH2Options {
  if (!r) return {};
  let maxConcurrentStreams: number | undefined;
  if (r.has('max_concurrent_streams')) {
    const v = r.num('max_concurrent_streams', 0);
    if (Number.isInteger(v) && v >= 1 && v <= 2147483647) maxConcurrentStreams = v;
    else r.issues.error(r.at('max_concurrent_streams'), `must be an integer in [1, 2147483647] (got ${String(v)})`);
  }
  const initialWindowSize = windowSize(r, 'initial_stream_window_size');
  const connectionWindowSize = windowSize(r, 'initial_connection_window_size');
  // Limits on what a client sends (flood protection), CONNECT and error handling of a server.
  r.accept(
    'max_outbound_frames',
    'max_outbound_control_frames',
    'max_consecutive_inbound_frames_with_empty_payload',
    'max_inbound_priority_frames_per_stream',
    'max_inbound_window_update_frames_per_data_frame_sent',
    'allow_connect',
    'stream_error_on_invalid_http_messaging',
    'override_stream_error_on_invalid_http_message',
    'use_oghttp2_codec',
  );
  warnUnlessDefault(r, 'hpack_table_size', 4096);
  warnUnlessDefault(r, 'allow_metadata', false);
  // connection_keepalive, custom_settings_parameters, max_metadata_size: done() names them.
  r.done();
  return { maxConcurrentStreams, initialWindowSize, connectionWindowSize };
}
