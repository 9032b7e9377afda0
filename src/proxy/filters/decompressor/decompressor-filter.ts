// envoy.filters.http.decompressor: decodes request and response bodies whose Content-Encoding
// starts with the decompressor_library's encoding (gzip, br, zstd), as Envoy:
// - skipped for a body-less message, without that Content-Encoding, or with Cache-Control:
//   no-transform (unless ignore_no_transform_header), or when the direction is disabled;
// - applied: Content-Length goes, the coding is taken off Content-Encoding (the header goes when it
//   was the only one), and a response ends with the trailers
//   x-envoy-decompressor-<library name>-{compressed,uncompressed}-bytes;
// - with response decompression on and advertise_accept_encoding (default), the library's encoding
//   is added to the request's Accept-Encoding (replacing any entry for it, q-value and all).
// Stats: http.<stat_prefix>.decompressor.<library name>.<gzip|brotli|zstd>.{request,response}.
// {decompressed,not_decompressed,total_compressed_bytes,total_uncompressed_bytes}, and the library's
// errors under ....decompressor_library.*. A corrupt body is cut where decoding failed, as Envoy.
import type { Reader } from '../../config/reader.ts';
import type { Stat, Stats } from '../../stats/stats.ts';
import { firstHeaderValue } from '../../http/first-header-value.ts';
import { FilterStatus, type BodyCodec, type BodyEnd, type HeaderMap, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import type { CodecCounters, CodecStream } from '../compressor/codec-stream.ts';
import type { EnvoyRuntime } from '../../envoy-runtime/index.ts';
import { readFeatureFlag, type FeatureFlag } from '../compressor/feature-flag.ts';
import { compileDecompressorLibrary, type DecompressorLibrary } from './decompression-library.ts';

export const DECOMPRESSOR_FILTER_NAME = 'envoy.filters.http.decompressor';
export const DECOMPRESSOR_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor';

interface Direction {
  readonly enabled: FeatureFlag;
  readonly ignoreNoTransform: boolean;
  readonly decompressed: Stat;
  readonly notDecompressed: Stat;
  readonly counters: CodecCounters;
}

export interface DecompressorConfig {
  readonly lib: DecompressorLibrary;
  readonly request: Direction;
  readonly response: Direction;
  readonly advertiseAcceptEncoding: boolean;
  readonly compressedTrailer: string;
  readonly uncompressedTrailer: string;
}

const EMPTY = Buffer.alloc(0);

/** One body's decoding: its stream, and its byte counts for the trailers. */
class Decoding implements BodyCodec {
  private readonly c: DecompressorConfig;
  private readonly d: Direction;
  private s: CodecStream | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  /** A response ends with the byte count trailers. */
  readonly addsTrailers: boolean;

  constructor(c: DecompressorConfig, d: Direction, withTrailers: boolean) {
    this.c = c;
    this.d = d;
    this.addsTrailers = withTrailers;
  }

  stream(): CodecStream {
    return (this.s = this.c.lib.stream(this.d.counters));
  }

  whole(body: Buffer): Buffer {
    const k = this.d.counters;
    this.bytesIn = body.length;
    k.bytesIn.value += body.length;
    let out: Buffer = EMPTY;
    try {
      out = this.c.lib.whole(body);
    } catch (e) {
      k.onError?.((e as NodeJS.ErrnoException).code ?? 'error');
    }
    this.bytesOut = out.length;
    k.bytesOut.value += out.length;
    return out;
  }

  end(e: BodyEnd): Buffer {
    if (!this.addsTrailers) return EMPTY;
    const s = this.s;
    e.trailers = { ...e.trailers, [this.c.compressedTrailer]: String(s ? s.bytesIn : this.bytesIn), [this.c.uncompressedTrailer]: String(s ? s.bytesOut : this.bytesOut) };
    return EMPTY;
  }
}

function noTransform(h: HeaderMap): boolean {
  const v = h['cache-control'];
  const s = Array.isArray(v) ? v.join(',') : v;
  return s !== undefined && s.split(',').some((t) => t.trim().toLowerCase() === 'no-transform');
}

class DecompressorFilter implements HttpFilter {
  private readonly c: DecompressorConfig;
  private readonly cb: StreamCallbacks;
  private headRequest = false;

  constructor(c: DecompressorConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead, endStream: boolean): FilterStatus {
    const c = this.c;
    const h = head.headers;
    this.headRequest = head.method === 'HEAD';
    if (c.response.enabled.value && c.advertiseAcceptEncoding) h['accept-encoding'] = addEncoding(h['accept-encoding'], c.lib.contentEncoding);
    if (!endStream && this.decodes(c.request, h)) this.cb.recodeRequestBody(new Decoding(c, c.request, false));
    return FilterStatus.Continue;
  }

  encodeHeaders(head: ResponseHead): void {
    const s = head.status;
    if (this.headRequest || s < 200 || s === 204 || s === 304) return;
    if (this.decodes(this.c.response, head.headers)) this.cb.recodeResponseBody(new Decoding(this.c, this.c.response, true));
  }

  /** Envoy's maybeInitDecompress: decides, counts, and rewrites the headers when it decodes. */
  private decodes(d: Direction, h: HeaderMap): boolean {
    const ce = firstHeaderValue(h['content-encoding']);
    const comma = ce?.indexOf(',') ?? -1;
    const first = ce === undefined ? undefined : (comma < 0 ? ce : ce.slice(0, comma)).trim().toLowerCase();
    if (!d.enabled.value || (!d.ignoreNoTransform && noTransform(h)) || first !== this.c.lib.contentEncoding) {
      d.notDecompressed.value++;
      return false;
    }
    d.decompressed.value++;
    delete h['content-length'];
    const rest = comma < 0 ? '' : ce!.slice(comma + 1).trim();
    if (rest) h['content-encoding'] = rest;
    else delete h['content-encoding'];
    return true;
  }
}

/** Envoy's addEncodingToAcceptEncoding: any entry for `encoding` is replaced by a plain one at the end. */
function addEncoding(v: string | string[] | undefined, encoding: string): string {
  const s = Array.isArray(v) ? v.join(',') : (v ?? '');
  const out: string[] = [];
  for (const e of s.split(',')) {
    const t = e.trim();
    if (!t) continue;
    const semi = t.indexOf(';');
    if ((semi < 0 ? t : t.slice(0, semi)).trim() !== encoding) out.push(t);
  }
  out.push(encoding);
  return out.join(',');
}

function direction(r: Reader | undefined, stats: Stats, prefix: string, lib: DecompressorLibrary, onError: (code: string) => void, runtime: EnvoyRuntime): Direction {
  const common = r?.obj('common_config');
  const enabled = readFeatureFlag(common?.obj('enabled'), true, runtime);
  const ignoreNoTransform = common?.bool('ignore_no_transform_header', false) ?? false;
  common?.done();
  const counters: CodecCounters = {
    bytesIn: stats.counter(`${prefix}total_compressed_bytes`),
    bytesOut: stats.counter(`${prefix}total_uncompressed_bytes`),
    onError,
    maxRatio: lib.maxRatio,
  };
  return { enabled, ignoreNoTransform, decompressed: stats.counter(`${prefix}decompressed`), notDecompressed: stats.counter(`${prefix}not_decompressed`), counters };
}

function compile(r: Reader, ctx: { readonly statPrefix: string; readonly stats: Stats; readonly runtime: EnvoyRuntime }): DecompressorConfig | undefined {
  const lib = compileDecompressorLibrary(r.obj('decompressor_library'));
  if (!r.has('decompressor_library')) r.issues.error(r.at('decompressor_library'), 'a decompressor filter needs decompressor_library (gzip, brotli or zstd)');
  const rq = r.obj('request_direction_config');
  const rs = r.obj('response_direction_config');
  r.done();
  if (!lib) {
    rq?.accept(...Object.keys(rq.raw));
    rs?.accept(...Object.keys(rs.raw));
    return undefined;
  }
  const base = `http.${ctx.statPrefix}.decompressor.${lib.name}.${lib.statsPrefix}`;
  const onError = lib.errorCounter(ctx.stats, base);
  const request = direction(rq, ctx.stats, `${base}request.`, lib, onError, ctx.runtime);
  const advertiseAcceptEncoding = rq?.bool('advertise_accept_encoding', true) ?? true;
  rq?.done();
  const response = direction(rs, ctx.stats, `${base}response.`, lib, onError, ctx.runtime);
  rs?.done();
  const trailer = `x-envoy-decompressor-${lib.name}`.toLowerCase();
  return { lib, request, response, advertiseAcceptEncoding, compressedTrailer: `${trailer}-compressed-bytes`, uncompressedTrailer: `${trailer}-uncompressed-bytes` };
}

export const decompressorFilterFactory: HttpFilterFactory<DecompressorConfig | undefined> = {
  name: DECOMPRESSOR_FILTER_NAME,
  typeUrls: [DECOMPRESSOR_TYPE],
  compile: (r, ctx) => compile(r, ctx),
  create: (c, cb) => (c ? new DecompressorFilter(c, cb) : {}),
};

export function setup(): void {
  registerHttpFilter(decompressorFilterFactory);
}
