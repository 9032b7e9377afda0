// RouteConfiguration bytes assembled from per-virtual-host pieces. A sidecar's port route holds a
// virtual host per service (1000 services: ~420 KB); a VirtualService change alters one of them,
// yet every namespace's table was encoded again in full (protobufjs from JSON: ~20-50 ms each,
// most of the RDS push). Each virtual host is encoded once per distinct content (keyed by its JSON
// text, ~1% of the cost of encoding it) and reused by every table and push that holds it. The
// result is byte-identical to encoding the whole message (fields in field-number order).
import { EnvoyJsonError, encodeMessage } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import { varintLength, writeVarint } from './varint.ts';

const ROUTE_CONFIGURATION = 'envoy.config.route.v3.RouteConfiguration';
const VIRTUAL_HOST = 'envoy.config.route.v3.VirtualHost';
const NAME_TAG = 0x0a; // field 1, length-delimited
const VIRTUAL_HOSTS_TAG = 0x12; // field 2, length-delimited

/** Encoded `virtual_hosts` entries by JSON text, in two generations (the older one is dropped when the newer fills). */
const GENERATION = 20_000;
let current = new Map<string, Buffer>();
let previous = new Map<string, Buffer>();

function readVarint(buf: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = buf[at++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, at];
    scale *= 0x80;
  }
}

function entry(vh: EnvoyJson, index: number): Buffer {
  const key = JSON.stringify(vh);
  let b = current.get(key);
  if (b) return b;
  b = previous.get(key);
  if (!b) {
    let body: Uint8Array;
    try {
      body = encodeMessage(VIRTUAL_HOST, vh);
    } catch (err) {
      if (!(err instanceof EnvoyJsonError)) throw err;
      throw new EnvoyJsonError(ROUTE_CONFIGURATION, err.issues.map((i) => ({ ...i, path: `virtual_hosts[${index}]${i.path ? `.${i.path}` : ''}` })));
    }
    b = Buffer.allocUnsafe(1 + varintLength(body.length) + body.length);
    b[0] = VIRTUAL_HOSTS_TAG;
    b.set(body, writeVarint(b, 1, body.length));
  }
  if (current.size >= GENERATION) {
    previous = current;
    current = new Map();
  }
  current.set(key, b);
  return b;
}

/** Encodes a RouteConfiguration in its JSON shape (throws EnvoyJsonError as encodeMessage does). */
export function encodeRouteConfiguration(rc: EnvoyJson): Uint8Array {
  const vhosts = rc.virtual_hosts;
  if (!Array.isArray(vhosts) || !vhosts.length || !vhosts.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v))) return encodeMessage(ROUTE_CONFIGURATION, rc);
  const rest = { ...rc };
  delete rest.virtual_hosts;
  const head = encodeMessage(ROUTE_CONFIGURATION, rest);
  const parts = (vhosts as EnvoyJson[]).map(entry);
  // The name (field 1) comes before the virtual hosts (field 2), every other field after them.
  let split = 0;
  if (head[0] === NAME_TAG) {
    const [len, at] = readVarint(head, 1);
    split = at + len;
  }
  let size = head.length;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafe(size);
  out.set(head.subarray(0, split), 0);
  let at = split;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out.set(head.subarray(split), at);
  return out;
}
