// Istio's TCP metadata exchange preamble (ALPN istio-peer-exchange): each side's first bytes are
// a header — magic 0x3D230467 and the payload length, both uint32 big-endian — and a payload, a
// google.protobuf.Any of type google.protobuf.Struct holding
//   { "x-envoy-peer-metadata": <node metadata Struct>, "x-envoy-peer-metadata-id": <node id> }
// (the same wire format as Istio's proxy, so a Rigging sidecar interoperates with an Envoy one).
import type { Duplex } from 'node:stream';
import protobuf from 'protobufjs';
import { decodeMessage, encodeMessage } from '../../envoy/index.ts';
import { PEER_ID_HEADER, PEER_METADATA_HEADER, peerLabels, type DecodedPeer } from './peer-metadata.ts';

export const PREAMBLE_MAGIC = 0x3d230467;
const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';
const HEADER_BYTES = 8;
/** A peer's metadata is a few hundred bytes; anything far larger is not a preamble. */
const MAX_PAYLOAD = 64 * 1024;

/** The preamble this proxy writes: node metadata (the exchanged keys) and node id. */
export function encodePreamble(metadata: Record<string, unknown>, id: string): Buffer {
  const struct = encodeMessage('google.protobuf.Struct', { [PEER_METADATA_HEADER]: metadata, [PEER_ID_HEADER]: id });
  const any = protobuf.Writer.create().uint32(10).string(STRUCT_TYPE_URL).uint32(18).bytes(struct).finish();
  const out = Buffer.allocUnsafe(HEADER_BYTES + any.length);
  out.writeUInt32BE(PREAMBLE_MAGIC, 0);
  out.writeUInt32BE(any.length, 4);
  out.set(any, HEADER_BYTES);
  return out;
}

export interface ExchangedPeer extends DecodedPeer {
  readonly id: string | undefined;
}

const MAX_CACHED = 1024;
const decoded = new Map<string, ExchangedPeer | null>();

/** The peer from a preamble payload (the Any); undefined when it is not one. Cached by value, so one peer is one object. */
export function decodePayload(payload: Buffer): ExchangedPeer | undefined {
  const key = payload.toString('latin1');
  const hit = decoded.get(key);
  if (hit !== undefined) return hit ?? undefined;
  let out: ExchangedPeer | null = null;
  try {
    const r = protobuf.Reader.create(payload);
    let typeUrl = '';
    let value: Uint8Array | undefined;
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 10) typeUrl = r.string();
      else if (tag === 18) value = r.bytes();
      else r.skipType(tag & 7);
    }
    if (typeUrl === STRUCT_TYPE_URL && value) {
      const s = decodeMessage('google.protobuf.Struct', value) as Record<string, unknown>;
      const md = s[PEER_METADATA_HEADER];
      const id = s[PEER_ID_HEADER];
      if (md && typeof md === 'object' && !Array.isArray(md)) {
        const metadata = md as Record<string, unknown>;
        out = { metadata, labels: peerLabels(metadata), id: typeof id === 'string' ? id : undefined };
      }
    }
  } catch {
    out = null;
  }
  if (decoded.size >= MAX_CACHED) decoded.delete(decoded.keys().next().value as string);
  decoded.set(key, out);
  return out ?? undefined;
}

/** How reading the peer's preamble ended. */
export type PreambleResult =
  | { readonly kind: 'peer'; readonly peer: ExchangedPeer }
  /** The first bytes are not a preamble (peer without the exchange): they stay in the stream. */
  | { readonly kind: 'absent' }
  /** A preamble header with a payload that is not peer metadata (skipped). */
  | { readonly kind: 'invalid' }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'closed' };

/**
 * Reads the peer's preamble from a paused socket, leaving every byte after it (or, when there is
 * no preamble, every byte) in the socket for whoever reads next; the socket stays paused.
 */
export function readPreamble(socket: Duplex, timeoutMs: number): Promise<PreambleResult> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (r: PreambleResult, rest?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onClose);
      socket.off('close', onClose);
      socket.off('error', onClose);
      socket.pause();
      if (rest?.length) socket.unshift(rest);
      resolve(r);
    };
    const onClose = () => finish({ kind: 'closed' });
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (buf.length < 4) return;
      if (buf.readUInt32BE(0) !== PREAMBLE_MAGIC) return finish({ kind: 'absent' }, buf);
      if (buf.length < HEADER_BYTES) return;
      const size = buf.readUInt32BE(4);
      if (size > MAX_PAYLOAD) return finish({ kind: 'invalid' }, buf);
      if (buf.length < HEADER_BYTES + size) return;
      const peer = decodePayload(buf.subarray(HEADER_BYTES, HEADER_BYTES + size));
      const rest = buf.subarray(HEADER_BYTES + size);
      finish(peer ? { kind: 'peer', peer } : { kind: 'invalid' }, rest);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }, buf), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onClose);
    socket.once('close', onClose);
    socket.once('error', onClose);
    socket.resume();
  });
}
