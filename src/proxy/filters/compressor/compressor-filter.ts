// envoy.filters.http.compressor: compresses response bodies (and, with request_direction_config,
// request bodies) with the compressor_library (gzip, brotli, zstd; compression-library.ts), as Envoy:
// - a response is compressed when the filter is enabled (common_config.enabled, a route's
//   CompressorPerRoute), it has a body (not HEAD, 1xx, 204, 304), its Content-Length is at least
//   min_content_length (30; no Content-Length: compressed), its content type is listed (Envoy's list
//   when none is; no Content-Type: compressed), no Cache-Control: no-transform, no ETag when
//   disable_on_etag_header, no Content-Encoding yet, and the request's Accept-Encoding chose this
//   filter's encoding among the stream's compressor filters (encoding-choice.ts);
// - then Content-Length goes, Content-Encoding is set, a strong ETag is removed (a weak one kept),
//   and Vary gets Accept-Encoding (also when only the Accept-Encoding kept it uncompressed);
// - remove_accept_encoding_header takes Accept-Encoding off the request to the upstream.
// Stats: http.<stat_prefix>.compressor.<library name>.<gzip|brotli|zstd>.{request,response}.* (a
// config without response_direction_config keeps the response ones one level up, as Envoy).
import { firstHeaderValue } from '../../http/first-header-value.ts';
import type { Reader } from '../../config/reader.ts';
import type { Stat, Stats } from '../../stats/stats.ts';
import { FilterStatus, type BodyCodec, type HeaderMap, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { compileCompressorLibrary, type CompressorLibrary } from './compression-library.ts';
import { HeaderStat, StreamCompressors, type Candidate, type EncodingDecision } from './encoding-choice.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';
import { readFeatureFlag, type FeatureFlag } from './feature-flag.ts';

export const COMPRESSOR_FILTER_NAME = 'envoy.filters.http.compressor';
export const COMPRESSOR_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor';
export const COMPRESSOR_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute';

/** Envoy's content types compressed when content_type is empty. */
const DEFAULT_CONTENT_TYPES = [
  'text/html', 'text/plain', 'text/css', 'application/javascript', 'application/x-javascript', 'text/javascript', 'text/x-javascript', 'text/ecmascript', 'text/js',
  'text/jscript', 'text/x-js', 'application/ecmascript', 'application/x-json', 'application/xml', 'application/json', 'image/svg+xml', 'text/xml', 'application/xhtml+xml',
];
const DEFAULT_MIN_CONTENT_LENGTH = 30;

interface DirectionStats {
  readonly compressed: Stat;
  readonly notCompressed: Stat;
  readonly totalUncompressedBytes: Stat;
  readonly totalCompressedBytes: Stat;
  readonly contentLengthTooSmall: Stat;
}

interface ResponseStats extends DirectionStats {
  readonly noAcceptHeader: Stat;
  readonly headerIdentity: Stat;
  readonly headerCompressorUsed: Stat;
  readonly headerCompressorOvershadowed: Stat;
  readonly headerWildcard: Stat;
  readonly headerNotValid: Stat;
  readonly notCompressedEtag: Stat;
}

interface Direction {
  readonly enabled: FeatureFlag;
  readonly minContentLength: number;
  /** Lower case. */
  readonly contentTypes: ReadonlySet<string>;
  /** The body codec of this direction (its byte counters are this direction's). */
  readonly codec: BodyCodec;
}

interface RequestDirection extends Direction {
  readonly stats: DirectionStats;
}

interface ResponseDirection extends Direction {
  readonly stats: ResponseStats;
  readonly disableOnEtag: boolean;
  readonly removeAcceptEncoding: boolean;
}

export interface CompressorConfig extends Candidate {
  readonly name: string;
  readonly request: RequestDirection;
  readonly response: ResponseDirection;
}

/** CompressorPerRoute: disabled, or overrides (whose response_direction_config enables response compression). */
export interface CompressorPerRoute {
  readonly responseEnabled?: boolean;
  readonly removeAcceptEncoding?: boolean;
}

/** The compressor filters created for each stream (Envoy keeps them in the stream's filter state). */
const streams = new WeakMap<StreamCallbacks, StreamCompressors>();

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

function hasToken(v: string | string[] | undefined, token: string): boolean {
  const s = headerString(v);
  if (!s) return false;
  for (const t of s.split(',')) if (t.trim().toLowerCase() === token) return true;
  return false;
}

/** The media type of a Content-Type (parameters cut), lower case. */
function mediaType(h: HeaderMap): string | undefined {
  const v = firstHeaderValue(h['content-type']);
  if (v === undefined) return undefined;
  const i = v.indexOf(';');
  return (i < 0 ? v : v.slice(0, i)).trim().toLowerCase();
}

function contentTypeAllowed(d: Direction, h: HeaderMap): boolean {
  const t = mediaType(h);
  return t === undefined || d.contentTypes.has(t);
}

/** Envoy's isMinimumContentLength: without Content-Length the length is unknown and compression goes on. */
function longEnough(d: Direction & { readonly stats: DirectionStats }, h: HeaderMap): boolean {
  const v = firstHeaderValue(h['content-length']);
  if (v === undefined) return true;
  const n = /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (n >= d.minContentLength) return true;
  d.stats.contentLengthTooSmall.value++;
  return false;
}

class CompressorFilter implements HttpFilter {
  private readonly c: CompressorConfig;
  private readonly cb: StreamCallbacks;
  private readonly compressors: StreamCompressors;
  private acceptEncoding: string | undefined;
  private perRoute: CompressorPerRoute | undefined;
  private headRequest = false;

  constructor(c: CompressorConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
    let s = streams.get(cb);
    if (!s) streams.set(cb, (s = new StreamCompressors()));
    s.register(c);
    this.compressors = s;
  }

  decodeHeaders(head: RequestHead, endStream: boolean): FilterStatus {
    const h = head.headers;
    this.acceptEncoding = headerString(h['accept-encoding']);
    this.headRequest = head.method === 'HEAD';
    const pr = (this.perRoute = this.cb.perRouteConfig<CompressorPerRoute>(this.c.name));
    if ((pr?.responseEnabled ?? this.c.response.enabled.value) && (pr?.removeAcceptEncoding ?? this.c.response.removeAcceptEncoding)) delete h['accept-encoding'];
    const rq = this.c.request;
    if (!endStream && rq.enabled.value && longEnough(rq, h) && contentTypeAllowed(rq, h) && h['content-encoding'] === undefined) {
      delete h['content-length'];
      h['content-encoding'] = this.c.contentEncoding;
      rq.stats.compressed.value++;
      this.cb.recodeRequestBody(rq.codec);
    } else rq.stats.notCompressed.value++;
    return FilterStatus.Continue;
  }

  encodeHeaders(head: ResponseHead): void {
    const rs = this.c.response;
    const h = head.headers;
    const status = head.status;
    const bigEnough = (this.perRoute?.responseEnabled ?? rs.enabled.value) && longEnough(rs, h);
    const compressible = bigEnough && contentTypeAllowed(rs, h) && !hasToken(h['cache-control'], 'no-transform') && this.etagAllowed(h) && h['content-encoding'] === undefined;
    const hasBody = !this.headRequest && status >= 200 && status !== 204 && status !== 304;
    if (hasBody && bigEnough && this.acceptEncodingAllowed(h) && compressible) {
      removeStrongEtag(h);
      delete h['content-length'];
      h['content-encoding'] = this.c.contentEncoding;
      rs.stats.compressed.value++;
      this.cb.recodeResponseBody(rs.codec);
    } else rs.stats.notCompressed.value++;
    // Even when the Accept-Encoding kept it uncompressed: a cache in front must know it varies.
    if (compressible) insertVary(h);
  }

  private etagAllowed(h: HeaderMap): boolean {
    if (!this.c.response.disableOnEtag || h.etag === undefined) return true;
    this.c.response.stats.notCompressedEtag.value++;
    return false;
  }

  private acceptEncodingAllowed(h: HeaderMap): boolean {
    const rs = this.c.response.stats;
    if (this.acceptEncoding === undefined) {
      rs.noAcceptHeader.value++;
      return false;
    }
    const d: EncodingDecision = this.compressors.decide(this.acceptEncoding, mediaType(h));
    const mine = d.encoding === this.c.contentEncoding;
    switch (d.stat) {
      case HeaderStat.ValidCompressor:
        (mine ? rs.headerCompressorUsed : rs.headerCompressorOvershadowed).value++;
        break;
      case HeaderStat.Identity:
        rs.headerIdentity.value++;
        break;
      case HeaderStat.Wildcard:
        rs.headerWildcard.value++;
        break;
      default:
        rs.headerNotValid.value++;
    }
    return mine;
  }
}

/** A strong ETag no longer matches the compressed representation: removed; a weak one (W/"...") stays. */
function removeStrongEtag(h: HeaderMap): void {
  const v = firstHeaderValue(h.etag);
  if (v !== undefined && !/^w\//i.test(v)) delete h.etag;
}

function insertVary(h: HeaderMap): void {
  const v = headerString(h.vary);
  if (v === undefined || v === '') h.vary = 'Accept-Encoding';
  else if (!hasToken(v, 'accept-encoding')) h.vary = `${v}, Accept-Encoding`;
}

function directionStats(stats: Stats, p: string): DirectionStats {
  return {
    compressed: stats.counter(`${p}compressed`),
    notCompressed: stats.counter(`${p}not_compressed`),
    totalUncompressedBytes: stats.counter(`${p}total_uncompressed_bytes`),
    totalCompressedBytes: stats.counter(`${p}total_compressed_bytes`),
    contentLengthTooSmall: stats.counter(`${p}content_length_too_small`),
  };
}

function responseStats(stats: Stats, p: string): ResponseStats {
  return {
    ...directionStats(stats, p),
    noAcceptHeader: stats.counter(`${p}no_accept_header`),
    headerIdentity: stats.counter(`${p}header_identity`),
    headerCompressorUsed: stats.counter(`${p}header_compressor_used`),
    headerCompressorOvershadowed: stats.counter(`${p}header_compressor_overshadowed`),
    headerWildcard: stats.counter(`${p}header_wildcard`),
    headerNotValid: stats.counter(`${p}header_not_valid`),
    notCompressedEtag: stats.counter(`${p}not_compressed_etag`),
  };
}

function codecFor(lib: CompressorLibrary, s: DirectionStats): BodyCodec {
  const counters = { bytesIn: s.totalUncompressedBytes, bytesOut: s.totalCompressedBytes };
  return {
    stream: () => lib.stream(counters),
    whole: (body) => {
      const out = lib.whole(body);
      s.totalUncompressedBytes.value += body.length;
      s.totalCompressedBytes.value += out.length;
      return out;
    },
  };
}

interface CommonConfig {
  readonly enabled: FeatureFlag;
  readonly minContentLength: number;
  readonly contentTypes: ReadonlySet<string>;
}

function contentTypeSet(types: string[]): ReadonlySet<string> {
  return new Set((types.length ? types : DEFAULT_CONTENT_TYPES).map((t) => t.trim().toLowerCase()));
}

/** CommonDirectionConfig; absent: enabled (unless `enabledByDefault` is false), 30 bytes, Envoy's types. */
function readCommon(r: Reader | undefined, enabledByDefault: boolean, runtime: EnvoyRuntime): CommonConfig {
  if (!r) return { enabled: { value: enabledByDefault }, minContentLength: DEFAULT_MIN_CONTENT_LENGTH, contentTypes: contentTypeSet([]) };
  const enabled = readFeatureFlag(r.obj('enabled'), enabledByDefault, runtime);
  const c = { enabled, minContentLength: r.num('min_content_length', DEFAULT_MIN_CONTENT_LENGTH), contentTypes: contentTypeSet(r.strs('content_type')) };
  r.done();
  return c;
}

const LEGACY_FIELDS = ['content_length', 'content_type', 'disable_on_etag_header', 'remove_accept_encoding_header', 'runtime_enabled'];

function compile(r: Reader, ctx: { readonly name: string; readonly statPrefix: string; readonly stats: Stats; readonly runtime: EnvoyRuntime }): CompressorConfig | undefined {
  const lib = compileCompressorLibrary(r.obj('compressor_library'));
  if (!r.has('compressor_library')) r.issues.error(r.at('compressor_library'), 'a compressor filter needs compressor_library (gzip, brotli or zstd)');
  const chooseFirst = r.bool('choose_first', false);
  const rqr = r.obj('request_direction_config');
  const rsr = r.obj('response_direction_config');
  // Request compression only when request_direction_config is set; response compression unless disabled.
  const rqCommon = readCommon(rqr?.obj('common_config'), rqr !== undefined, ctx.runtime);
  let rsCommon: CommonConfig;
  let disableOnEtag: boolean;
  let removeAcceptEncoding: boolean;
  if (rsr) {
    rsCommon = readCommon(rsr.obj('common_config'), true, ctx.runtime);
    disableOnEtag = rsr.bool('disable_on_etag_header', false);
    removeAcceptEncoding = rsr.bool('remove_accept_encoding_header', false);
    rsr.done();
    for (const k of LEGACY_FIELDS) if (r.has(k)) r.issues.warn(r.at(k), 'deprecated field ignored: response_direction_config is set (as Envoy)');
  } else {
    // The deprecated top-level fields, as Envoy reads them without response_direction_config.
    const types = r.strs('content_type');
    rsCommon = { enabled: readFeatureFlag(r.obj('runtime_enabled'), true, ctx.runtime), minContentLength: r.num('content_length', DEFAULT_MIN_CONTENT_LENGTH), contentTypes: contentTypeSet(types) };
    disableOnEtag = r.bool('disable_on_etag_header', false);
    removeAcceptEncoding = r.bool('remove_accept_encoding_header', false);
  }
  rqr?.done();
  r.accept(...LEGACY_FIELDS);
  r.done();
  if (!lib) return undefined;
  const base = `http.${ctx.statPrefix}.compressor.${lib.name}.${lib.statsPrefix}`;
  const rqStats = directionStats(ctx.stats, `${base}request.`);
  const rsStats = responseStats(ctx.stats, rsr ? `${base}response.` : base);
  return {
    name: ctx.name,
    contentEncoding: lib.contentEncoding,
    chooseFirst,
    contentTypes: rsCommon.contentTypes,
    request: { ...rqCommon, stats: rqStats, codec: codecFor(lib, rqStats) },
    response: { ...rsCommon, stats: rsStats, codec: codecFor(lib, rsStats), disableOnEtag, removeAcceptEncoding },
  };
}

function compilePerRoute(r: Reader): CompressorPerRoute {
  const disabled = r.bool('disabled', false);
  const o = r.obj('overrides');
  let out: CompressorPerRoute = {};
  if (disabled) out = { responseEnabled: false };
  else if (o) {
    const rd = o.obj('response_direction_config');
    o.done();
    if (rd) {
      const rae = rd.get('remove_accept_encoding_header');
      out = { responseEnabled: true, removeAcceptEncoding: rae === undefined ? undefined : rd.bool('remove_accept_encoding_header', false) };
      rd.done();
    }
  } else r.issues.error(r.path, 'a CompressorPerRoute needs disabled: true or overrides');
  if (r.has('disabled') && !disabled) r.issues.error(r.at('disabled'), 'disabled can only be true (leave it out otherwise)');
  r.done();
  return out;
}

/** The filter's config; undefined when the library was refused (the update is NACKed then). */
type Compiled = CompressorConfig | undefined;

export const compressorFilterFactory: HttpFilterFactory<Compiled, CompressorPerRoute> = {
  name: COMPRESSOR_FILTER_NAME,
  typeUrls: [COMPRESSOR_TYPE],
  perRouteTypeUrls: [COMPRESSOR_PER_ROUTE_TYPE],
  compile: (r, ctx) => compile(r, ctx),
  compilePerRoute: (r) => compilePerRoute(r),
  create: (c, cb) => (c ? new CompressorFilter(c, cb) : {}),
};

export function setup(): void {
  registerHttpFilter(compressorFilterFactory);
}
