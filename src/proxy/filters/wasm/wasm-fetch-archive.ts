// Wasm modules packed in archives, as Istio's agent unpacks them: a module served over http(s)
// gzipped or in a tar is unboxed; a Docker/OCI "compat" image layer is a tar.gz holding plugin.wasm.
// The tar reader is written here (ustar with pax/GNU long names, ~30 lines) rather than taken from a
// package: it only finds one regular file in a buffer already in memory.
import zlib from 'node:zlib';

const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

export function isWasm(b: Buffer): boolean {
  return b.length >= 8 && b.subarray(0, 4).equals(WASM_MAGIC);
}

const isGzip = (b: Buffer) => b.length > 2 && b[0] === 0x1f && b[1] === 0x8b;
const isTar = (b: Buffer) => b.length > 262 && b.toString('latin1', 257, 262) === 'ustar';

/** Istio's unboxIfPossible: gunzip / take a tar's first file until a Wasm module shows; else the bytes as they came. */
export function unbox(origin: Buffer, limit: number): Buffer {
  let b = origin;
  for (let depth = 0; depth < 4 && !isWasm(b); depth++) {
    try {
      if (isGzip(b)) b = zlib.gunzipSync(b, { maxOutputLength: limit });
      else if (isTar(b)) b = tarFiles(b)[0]?.data ?? origin;
      else return origin;
    } catch {
      return origin;
    }
  }
  return b;
}

interface TarFile {
  readonly name: string;
  readonly data: Buffer;
}

const cString = (b: Buffer, start: number, end: number) => {
  const s = b.subarray(start, end);
  const nul = s.indexOf(0);
  return s.toString('utf8', 0, nul < 0 ? s.length : nul);
};

/** The regular files of a tar archive, in order. */
export function tarFiles(tar: Buffer): TarFile[] {
  const out: TarFile[] = [];
  let longName: string | undefined;
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(cString(h, 124, 136).trim() || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw new Error(`bad tar header at byte ${off}`);
    const type = String.fromCharCode(h[156]!);
    const data = tar.subarray(off + 512, off + 512 + size);
    const prefix = h.toString('latin1', 257, 262) === 'ustar' ? cString(h, 345, 500) : '';
    const name = longName ?? (prefix ? `${prefix}/${cString(h, 0, 100)}` : cString(h, 0, 100));
    longName = undefined;
    if (type === 'L') longName = cString(data, 0, data.length);
    else if (type === 'x') longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1];
    else if (type === '0' || type === '\0') out.push({ name, data });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The file named plugin.wasm (at any depth) in a tar.gz layer, as Istio's compat image spec has it. */
export function pluginFromLayer(layer: Buffer, limit: number): Buffer {
  let tar: Buffer;
  try {
    tar = zlib.gunzipSync(layer, { maxOutputLength: limit });
  } catch (e) {
    throw new Error(`the layer is not a tar.gz: ${(e as Error).message}`);
  }
  const file = tarFiles(tar).find((f) => f.name.split('/').pop() === 'plugin.wasm');
  if (!file) throw new Error('plugin.wasm not found in the layer');
  return file.data;
}
