// DiscoveryResponse bytes assembled from pieces: each resource's `resources` entry (an Any) is
// encoded once and shared by every response that carries it (the packed resources are interned,
// so thousands of proxies receiving the same route table reuse one buffer). Only version, type URL
// and nonce are encoded per response. Byte-identical to protobufjs's encoding of the same message.
import type { AnyMessage } from '../../envoy/index.ts';
import type { DiscoveryResponseJson } from './ads-connection.ts';
import { varintLength, writeVarint } from './varint.ts';

const VERSION_INFO = 0x0a; // field 1, length-delimited
const RESOURCES = 0x12; // field 2
const TYPE_URL = 0x22; // field 4
const NONCE = 0x2a; // field 5
const ANY_TYPE_URL = 0x0a; // Any field 1
const ANY_VALUE = 0x12; // Any field 2

const entries = new WeakMap<AnyMessage, Buffer>();

/** tag, length, bytes of one length-delimited field; `bytes` empty: nothing (proto3 default). */
function field(tag: number, bytes: Uint8Array): number {
  return bytes.length ? 1 + varintLength(bytes.length) + bytes.length : 0;
}

function writeField(buf: Buffer, at: number, tag: number, bytes: Uint8Array): number {
  if (!bytes.length) return at;
  buf[at++] = tag;
  at = writeVarint(buf, at, bytes.length);
  buf.set(bytes, at);
  return at + bytes.length;
}

/** The encoded `resources` entry for one Any (cached per interned Any). */
function entry(any: AnyMessage): Buffer {
  let b = entries.get(any);
  if (b) return b;
  const typeUrl = Buffer.from(any.type_url);
  const anyLength = field(ANY_TYPE_URL, typeUrl) + field(ANY_VALUE, any.value);
  b = Buffer.allocUnsafe(1 + varintLength(anyLength) + anyLength);
  let at = 0;
  b[at++] = RESOURCES;
  at = writeVarint(b, at, anyLength);
  at = writeField(b, at, ANY_TYPE_URL, typeUrl);
  writeField(b, at, ANY_VALUE, any.value);
  entries.set(any, b);
  return b;
}

function encodeInto(msg: DiscoveryResponseJson, prefix: number): Buffer {
  const version = Buffer.from(msg.version_info ?? '');
  const typeUrl = Buffer.from(msg.type_url ?? '');
  const nonce = Buffer.from(msg.nonce ?? '');
  const parts = (msg.resources ?? []).map(entry);
  let size = field(VERSION_INFO, version) + field(TYPE_URL, typeUrl) + field(NONCE, nonce);
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafe(prefix + size);
  let at = writeField(out, prefix, VERSION_INFO, version);
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  at = writeField(out, at, TYPE_URL, typeUrl);
  writeField(out, at, NONCE, nonce);
  return out;
}

export function encodeDiscoveryResponse(msg: DiscoveryResponseJson): Buffer {
  return encodeInto(msg, 0);
}

/** The response as a gRPC length-prefixed message (compressed flag 0, 4-byte big-endian length), ready for the HTTP/2 stream. */
export function encodeFramedDiscoveryResponse(msg: DiscoveryResponseJson): Buffer {
  const out = encodeInto(msg, 5);
  out[0] = 0;
  out.writeUInt32BE(out.length - 5, 1);
  return out;
}
