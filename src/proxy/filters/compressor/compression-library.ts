// The compressor libraries of envoy.filters.http.compressor (compressor_library, category
// envoy.compression.compressor): gzip, brotli and zstd, all through node:zlib, with Envoy's
// defaults (gzip: level default, memory_level 5, window_bits 12; brotli: quality 3, window_bits 18,
// input_block_bits 24; zstd: level 3) and its content encodings and stat prefixes.
import zlib from 'node:zlib';
import type { Reader } from '../../config/reader.ts';
import { CodecStream, type CodecCounters } from './codec-stream.ts';

const C = zlib.constants;

export interface CompressorLibrary {
  /** compressor_library.name (a stat path segment). */
  readonly name: string;
  /** What Content-Encoding / Accept-Encoding call it: gzip, br, zstd. */
  readonly contentEncoding: string;
  /** The library's stat prefix segment: "gzip.", "brotli.", "zstd.". */
  readonly statsPrefix: string;
  /** A stream compressing a body, flushed after each chunk as Envoy's compressor does. */
  stream(counters: CodecCounters): CodecStream;
  /** A whole body compressed at once (a local reply's). */
  whole(body: Buffer): Buffer;
}

const GZIP_TYPE = 'type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip';
const BROTLI_TYPE = 'type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli';
const ZSTD_TYPE = 'type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd';

const GZIP_LEVELS: Record<string, number> = { DEFAULT_COMPRESSION: C.Z_DEFAULT_COMPRESSION, BEST_SPEED: 1, BEST_COMPRESSION: 9 };
for (let i = 1; i <= 9; i++) GZIP_LEVELS[`COMPRESSION_LEVEL_${i}`] = i;
const GZIP_STRATEGIES: Record<string, number> = { DEFAULT_STRATEGY: C.Z_DEFAULT_STRATEGY, FILTERED: C.Z_FILTERED, HUFFMAN_ONLY: C.Z_HUFFMAN_ONLY, RLE: C.Z_RLE, FIXED: C.Z_FIXED };
const BROTLI_MODES: Record<string, number> = { DEFAULT: C.BROTLI_MODE_GENERIC, GENERIC: C.BROTLI_MODE_GENERIC, TEXT: C.BROTLI_MODE_TEXT, FONT: C.BROTLI_MODE_FONT };
// Envoy's Zstd.Strategy numbers are zstd's ZSTD_strategy values (DEFAULT: the level's own).
const ZSTD_STRATEGIES = ['DEFAULT', 'FAST', 'DFAST', 'GREEDY', 'LAZY', 'LAZY2', 'BTLAZY2', 'BTOPT', 'BTULTRA', 'BTULTRA2'];

/** Reads compressor_library (a TypedExtensionConfig); undefined, with an error at its path, when unusable. */
export function compileCompressorLibrary(r: Reader | undefined): CompressorLibrary | undefined {
  if (!r) {
    // The proto marks it required.
    return undefined;
  }
  const name = r.str('name');
  const tc = r.obj('typed_config');
  r.done();
  const type = tc?.str('@type') ?? '';
  if (!tc || !type) {
    r.issues.error(r.at('typed_config'), 'a compressor library needs typed_config with an @type (gzip, brotli or zstd compressor)');
    return undefined;
  }
  if (!name) r.issues.error(r.at('name'), "a compressor library needs a name (it names the library's stats)");
  const lib = type === GZIP_TYPE ? gzip(name, tc) : type === BROTLI_TYPE ? brotli(name, tc) : type === ZSTD_TYPE ? zstd(name, tc) : undefined;
  if (lib) {
    // Parameters the library itself refuses (a zstd level out of its range) fail here, not per request.
    try {
      lib.whole(Buffer.alloc(0));
    } catch (e) {
      r.issues.error(r.at('typed_config'), `the compressor library refuses these parameters: ${(e as Error).message}`);
      return undefined;
    }
    return lib;
  }
  tc.accept(...Object.keys(tc.raw));
  r.issues.error(r.at('typed_config'), `unsupported compressor library ${type}: rig proxy has gzip, brotli and zstd (envoy.compression.{gzip,brotli,zstd}.compressor)`);
  return undefined;
}

/** A UInt32Value field within [min, max], else an error at its path and the default. */
export function ranged(r: Reader, key: string, def: number, min: number, max: number): number {
  const v = r.num(key, def);
  if (!Number.isInteger(v) || v < min || v > max) {
    r.issues.error(r.at(key), `must be an integer from ${min} to ${max}, got ${v}`);
    return def;
  }
  return v;
}

export function enumValue(r: Reader, key: string, table: Record<string, number> | readonly string[], def: string): number {
  const name = r.str(key, def);
  const v = Array.isArray(table) ? table.indexOf(name) : (table as Record<string, number>)[name];
  if (v === undefined || (Array.isArray(table) && v < 0)) {
    r.issues.error(r.at(key), `unknown value ${name}; expected one of ${(Array.isArray(table) ? table : Object.keys(table)).join(', ')}`);
    return Array.isArray(table) ? 0 : (table as Record<string, number>)[def];
  }
  return v;
}

function gzip(name: string, r: Reader): CompressorLibrary {
  const opts: zlib.ZlibOptions = {
    level: enumValue(r, 'compression_level', GZIP_LEVELS, 'DEFAULT_COMPRESSION'),
    strategy: enumValue(r, 'compression_strategy', GZIP_STRATEGIES, 'DEFAULT_STRATEGY'),
    memLevel: ranged(r, 'memory_level', 5, 1, 9),
    windowBits: ranged(r, 'window_bits', 12, 9, 15),
    chunkSize: ranged(r, 'chunk_size', 4096, 4096, 65536),
  };
  const streamOpts = { ...opts, flush: C.Z_SYNC_FLUSH };
  r.done();
  return {
    name,
    contentEncoding: 'gzip',
    statsPrefix: 'gzip.',
    stream: (counters) => new CodecStream(zlib.createGzip(streamOpts), counters),
    whole: (body) => zlib.gzipSync(body, opts),
  };
}

function brotli(name: string, r: Reader): CompressorLibrary {
  const params: Record<number, number> = {
    [C.BROTLI_PARAM_QUALITY]: ranged(r, 'quality', 3, 0, 11),
    [C.BROTLI_PARAM_MODE]: enumValue(r, 'encoder_mode', BROTLI_MODES, 'DEFAULT'),
    [C.BROTLI_PARAM_LGWIN]: ranged(r, 'window_bits', 18, 10, 24),
    [C.BROTLI_PARAM_LGBLOCK]: ranged(r, 'input_block_bits', 24, 16, 24),
  };
  if (r.bool('disable_literal_context_modeling', false)) params[C.BROTLI_PARAM_DISABLE_LITERAL_CONTEXT_MODELING] = 1;
  const opts: zlib.BrotliOptions = { params, chunkSize: ranged(r, 'chunk_size', 4096, 4096, 65536) };
  const streamOpts = { ...opts, flush: C.BROTLI_OPERATION_FLUSH };
  r.done();
  return {
    name,
    contentEncoding: 'br',
    statsPrefix: 'brotli.',
    stream: (counters) => new CodecStream(zlib.createBrotliCompress(streamOpts), counters),
    whole: (body) => zlib.brotliCompressSync(body, opts),
  };
}

function zstd(name: string, r: Reader): CompressorLibrary {
  const params: Record<number, number> = { [C.ZSTD_c_compressionLevel]: r.num('compression_level', 3) };
  const strategy = enumValue(r, 'strategy', ZSTD_STRATEGIES, 'DEFAULT');
  if (strategy > 0) params[C.ZSTD_c_strategy] = strategy;
  if (r.bool('enable_checksum', false)) params[C.ZSTD_c_checksumFlag] = 1;
  if (r.has('dictionary')) r.issues.error(r.at('dictionary'), 'zstd dictionaries are not supported by rig proxy (node:zlib takes none); remove the field');
  const opts: zlib.ZstdOptions = { params, chunkSize: ranged(r, 'chunk_size', 4096, 4096, 65536) };
  const streamOpts = { ...opts, flush: C.ZSTD_e_flush };
  r.done();
  return {
    name,
    contentEncoding: 'zstd',
    statsPrefix: 'zstd.',
    stream: (counters) => new CodecStream(zlib.createZstdCompress(streamOpts), counters),
    whole: (body) => zlib.zstdCompressSync(body, opts),
  };
}
