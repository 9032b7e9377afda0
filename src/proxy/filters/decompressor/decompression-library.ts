// The decompressor libraries of envoy.filters.http.decompressor (decompressor_library, category
// envoy.compression.decompressor): gzip, brotli and zstd through node:zlib, with Envoy's defaults
// (gzip: window_bits 15, max_inflate_ratio 100) and their error stats, rooted at
// <filter stats>decompressor_library.: zlib_data_error, zlib_buf_error, ... (gzip), brotli_error,
// zstd_generic_error, ... (zstd).
import zlib from 'node:zlib';
import type { Reader } from '../../config/reader.ts';
import type { Stats } from '../../stats/stats.ts';
import { CodecStream, type CodecCounters } from '../compressor/codec-stream.ts';
import { ranged } from '../compressor/compression-library.ts';

export interface DecompressorLibrary {
  readonly name: string;
  /** The Content-Encoding it decodes (gzip, br, zstd). */
  readonly contentEncoding: string;
  readonly statsPrefix: string;
  /** Sets up the library's error counters under `prefix` (the filter's stats root). */
  errorCounter(stats: Stats, prefix: string): (code: string) => void;
  stream(counters: CodecCounters): CodecStream;
  /** A whole body decoded at once; throws on corrupt input. */
  whole(body: Buffer): Buffer;
  /** Decompression stops past this many output bytes per input byte (0: no limit). */
  readonly maxRatio: number;
}

const GZIP_TYPE = 'type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip';
const BROTLI_TYPE = 'type.googleapis.com/envoy.extensions.compression.brotli.decompressor.v3.Brotli';
const ZSTD_TYPE = 'type.googleapis.com/envoy.extensions.compression.zstd.decompressor.v3.Zstd';

/** node:zlib error codes → Envoy's zlib decompressor counters. */
const ZLIB_ERRORS: Record<string, string> = { Z_ERRNO: 'zlib_errno', Z_STREAM_ERROR: 'zlib_stream_error', Z_DATA_ERROR: 'zlib_data_error', Z_MEM_ERROR: 'zlib_mem_error', Z_BUF_ERROR: 'zlib_buf_error', Z_VERSION_ERROR: 'zlib_version_error' };
const ZSTD_ERRORS: Record<string, string> = { ZSTD_error_dictionary_wrong: 'zstd_dictionary_error', ZSTD_error_checksum_wrong: 'zstd_checksum_wrong_error', ZSTD_error_memory_allocation: 'zstd_memory_error' };

function counters(stats: Stats, prefix: string, table: Record<string, string>, fallback: string): (code: string) => void {
  const byCode = new Map(Object.entries(table).map(([code, name]) => [code, stats.counter(`${prefix}decompressor_library.${name}`)]));
  const other = stats.counter(`${prefix}decompressor_library.${fallback}`);
  return (code) => void ((byCode.get(code) ?? other).value++);
}

export function compileDecompressorLibrary(r: Reader | undefined): DecompressorLibrary | undefined {
  if (!r) return undefined;
  const name = r.str('name');
  const tc = r.obj('typed_config');
  r.done();
  const type = tc?.str('@type') ?? '';
  if (!tc || !type) {
    r.issues.error(r.at('typed_config'), 'a decompressor library needs typed_config with an @type (gzip, brotli or zstd decompressor)');
    return undefined;
  }
  if (!name) r.issues.error(r.at('name'), "a decompressor library needs a name (it names the library's stats)");
  const chunkSize = ranged(tc, 'chunk_size', 4096, 4096, 65536);
  switch (type) {
    case GZIP_TYPE: {
      // Envoy inflates gzip only (window bits + 16), not zlib-wrapped or raw deflate.
      const opts: zlib.ZlibOptions = { windowBits: ranged(tc, 'window_bits', 15, 9, 15), chunkSize, finishFlush: zlib.constants.Z_SYNC_FLUSH };
      const maxRatio = ranged(tc, 'max_inflate_ratio', 100, 1, 1032);
      tc.done();
      return {
        name,
        contentEncoding: 'gzip',
        statsPrefix: 'gzip.',
        maxRatio,
        errorCounter: (stats, prefix) => counters(stats, prefix, ZLIB_ERRORS, 'zlib_data_error'),
        stream: (c) => new CodecStream(zlib.createGunzip(opts), c),
        whole: (body) => zlib.gunzipSync(body, opts),
      };
    }
    case BROTLI_TYPE: {
      const params: Record<number, number> = {};
      if (tc.bool('disable_ring_buffer_reallocation', false)) params[zlib.constants.BROTLI_DECODER_PARAM_DISABLE_RING_BUFFER_REALLOCATION] = 1;
      const opts: zlib.BrotliOptions = { params, chunkSize };
      tc.done();
      return {
        name,
        contentEncoding: 'br',
        statsPrefix: 'brotli.',
        maxRatio: 0,
        errorCounter: (stats, prefix) => counters(stats, prefix, {}, 'brotli_error'),
        stream: (c) => new CodecStream(zlib.createBrotliDecompress(opts), c),
        whole: (body) => zlib.brotliDecompressSync(body, opts),
      };
    }
    case ZSTD_TYPE: {
      if (tc.has('dictionaries')) tc.issues.error(tc.at('dictionaries'), 'zstd dictionaries are not supported by rig proxy (node:zlib takes none); remove the field');
      tc.accept('dictionaries');
      const opts: zlib.ZstdOptions = { chunkSize };
      tc.done();
      return {
        name,
        contentEncoding: 'zstd',
        statsPrefix: 'zstd.',
        maxRatio: 0,
        errorCounter: (stats, prefix) => counters(stats, prefix, ZSTD_ERRORS, 'zstd_generic_error'),
        stream: (c) => new CodecStream(zlib.createZstdDecompress(opts), c),
        whole: (body) => zlib.zstdDecompressSync(body, opts),
      };
    }
    default:
      tc.accept(...Object.keys(tc.raw));
      r.issues.error(r.at('typed_config'), `unsupported decompressor library ${type}: rig proxy has gzip, brotli and zstd (envoy.compression.{gzip,brotli,zstd}.decompressor)`);
      return undefined;
  }
}
