// DiscoveryRequest decoding with the resource names interned by their bytes. Every ACK repeats the
// names it watches: a sidecar's EDS ACK carries ~1000 cluster names (~60 KB), and decoding them
// into fresh strings on every ACK, then comparing them with the watched ones, was a large part of
// the control plane's CPU while 2000 proxies connected. The names' bytes are looked up instead:
// the same bytes give the same (interned) array, so an unchanged ACK compares by identity.
// Everything else is decoded by protobufjs; input it cannot split goes to protobufjs whole.
import { decodeMessage } from '../../envoy/index.ts';
import type { DiscoveryRequestJson } from './discovery-server.ts';
import { internNames } from './watched-names.ts';

const REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
const RESOURCE_NAMES = 3;

const byBytes = new Map<string, WeakRef<string[]>>();
const cleanup = new FinalizationRegistry<string>((key) => {
  if (!byBytes.get(key)?.deref()) byBytes.delete(key);
});

/** [value, next offset], or undefined past the end / over 2^53. */
function varint(buf: Uint8Array, at: number): [number, number] | undefined {
  let value = 0;
  let scale = 1;
  while (at < buf.length && scale <= 2 ** 49) {
    const b = buf[at++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, at];
    scale *= 0x80;
  }
  return undefined;
}

/** Offset after the field starting at `at`, and its number and wire type; undefined when malformed. */
function skipField(buf: Uint8Array, at: number): { field: number; wire: number; end: number } | undefined {
  const tag = varint(buf, at);
  if (!tag) return undefined;
  const [key, next] = tag;
  const field = Math.floor(key / 8);
  const wire = key % 8;
  let end: number;
  if (wire === 0) end = varint(buf, next)?.[1] ?? -1;
  else if (wire === 1) end = next + 8;
  else if (wire === 5) end = next + 4;
  else if (wire === 2) {
    const len = varint(buf, next);
    end = len ? len[1] + len[0] : -1;
  } else return undefined;
  return field > 0 && end > 0 && end <= buf.length ? { field, wire, end } : undefined;
}

function namesOf(region: Buffer): string[] {
  const key = region.toString('latin1');
  const hit = byBytes.get(key)?.deref();
  if (hit) return hit;
  const names: string[] = [];
  for (let at = 0; at < region.length; ) {
    const [len, start] = varint(region, at + 1)!;
    names.push(region.toString('utf8', start, start + len));
    at = start + len;
  }
  const list = internNames(names);
  byBytes.set(key, new WeakRef(list));
  cleanup.register(list, key);
  return list;
}

export function decodeDiscoveryRequest(buf: Buffer): DiscoveryRequestJson {
  let namesStart = -1;
  let namesEnd = -1;
  const rest: Buffer[] = [];
  for (let at = 0; at < buf.length; ) {
    const f = skipField(buf, at);
    if (!f) return decodeMessage(REQUEST, buf) as DiscoveryRequestJson;
    if (f.field === RESOURCE_NAMES && f.wire === 2) {
      // Names split by other fields (legal, never seen from Envoy or grpc) are decoded as usual.
      if (namesStart >= 0 && at !== namesEnd) return decodeMessage(REQUEST, buf) as DiscoveryRequestJson;
      if (namesStart < 0) namesStart = at;
      namesEnd = f.end;
    } else rest.push(buf.subarray(at, f.end));
    at = f.end;
  }
  if (namesStart < 0) return decodeMessage(REQUEST, buf) as DiscoveryRequestJson;
  const msg = decodeMessage(REQUEST, rest.length === 1 ? rest[0] : Buffer.concat(rest)) as DiscoveryRequestJson;
  msg.resource_names = namesOf(buf.subarray(namesStart, namesEnd));
  return msg;
}
