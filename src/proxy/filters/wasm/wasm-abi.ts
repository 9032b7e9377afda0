// The numbers of the Proxy-Wasm ABI 0.2.1 (github.com/proxy-wasm/spec), shared by the host
// functions and the stream driver.

export const WasmResult = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  SerializationFailure: 3,
  ParseFailure: 4,
  InvalidMemoryAccess: 6,
  Empty: 7,
  CasMismatch: 8,
  InternalFailure: 10,
  Unimplemented: 12,
} as const;

export const BufferType = {
  HttpRequestBody: 0,
  HttpResponseBody: 1,
  DownstreamData: 2,
  UpstreamData: 3,
  HttpCallResponseBody: 4,
  GrpcReceiveBuffer: 5,
  VmConfiguration: 6,
  PluginConfiguration: 7,
  CallData: 8,
} as const;

export const MapType = {
  HttpRequestHeaders: 0,
  HttpRequestTrailers: 1,
  HttpResponseHeaders: 2,
  HttpResponseTrailers: 3,
  GrpcReceiveInitialMetadata: 4,
  GrpcReceiveTrailingMetadata: 5,
  HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
} as const;

export const StreamType = { Request: 0, Response: 1, Downstream: 2, Upstream: 3 } as const;

/** FilterHeadersStatus / FilterDataStatus / FilterTrailersStatus: 0 continues; anything else stops (Action::Pause is 1). */
export const Action = { Continue: 0, Pause: 1 } as const;

export const LogLevel = { Trace: 0, Debug: 1, Info: 2, Warn: 3, Error: 4, Critical: 5 } as const;

export const MetricType = { Counter: 0, Gauge: 1, Histogram: 2 } as const;

/** The ABI versions a module may declare by exporting a function of this name. */
export const SUPPORTED_ABI = ['proxy_abi_version_0_2_1', 'proxy_abi_version_0_2_0'];
export const OLD_ABI = 'proxy_abi_version_0_1_0';

// WASI errno values used by the small WASI subset (the SDKs' runtimes import it).
export const Errno = { Success: 0, Badf: 8, Inval: 28, Nosys: 52 } as const;

/**
 * Header pairs as the ABI serializes them: u32 count, (u32 key size, u32 value size)*, then each key
 * and value NUL-terminated. Header names and values are bytes; the proxy's header maps keep each byte
 * as one latin1 char (as its HTTP/1 codec and undici do), so the pairs convert as latin1.
 */
export function serializePairs(pairs: readonly (readonly [string, string])[]): Buffer {
  const bytes: Buffer[] = [];
  let size = 4 + pairs.length * 8;
  for (const [k, v] of pairs) {
    const kb = Buffer.from(k, 'latin1');
    const vb = Buffer.from(v, 'latin1');
    bytes.push(kb, vb);
    size += kb.length + vb.length + 2;
  }
  const out = Buffer.alloc(size);
  out.writeUInt32LE(pairs.length, 0);
  let off = 4 + pairs.length * 8;
  for (let i = 0; i < pairs.length; i++) {
    const kb = bytes[2 * i]!;
    const vb = bytes[2 * i + 1]!;
    out.writeUInt32LE(kb.length, 4 + i * 8);
    out.writeUInt32LE(vb.length, 8 + i * 8);
    kb.copy(out, off);
    off += kb.length + 1;
    vb.copy(out, off);
    off += vb.length + 1;
  }
  return out;
}

/** The inverse of serializePairs; undefined when `b` is not a well-formed pair list. */
export function parsePairs(b: Buffer): [string, string][] | undefined {
  if (b.length === 0) return [];
  if (b.length < 4) return undefined;
  const n = b.readUInt32LE(0);
  if (4 + n * 8 > b.length) return undefined;
  const out: [string, string][] = [];
  let off = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    const kl = b.readUInt32LE(4 + i * 8);
    const vl = b.readUInt32LE(8 + i * 8);
    if (off + kl + vl + 2 > b.length) return undefined;
    const k = b.toString('latin1', off, off + kl);
    off += kl + 1;
    const v = b.toString('latin1', off, off + vl);
    off += vl + 1;
    out.push([k, v]);
  }
  return out;
}
