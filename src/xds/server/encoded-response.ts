// DiscoveryResponses encoded once per distinct content and shared by every stream that gets the
// same one: all proxies of a namespace receive the same route table, so a push of 2000 proxies
// encodes ~10 responses instead of 2000, and the streams' write queues hold one buffer each (the
// frame goes out as is: see grpc-server.ts). A response is identified by its version, type and
// resources (the packed resources are interned: same content, same object). Two responses with
// the same identity are the same bytes, nonce included: a stream that is sent identical content
// twice in one version may see the same nonce twice, and an ACK of either ACKs that content.
import type { PackedResource } from './resource-cache.ts';
import { encodeFramedDiscoveryResponse } from './response-encoder.ts';

export class EncodedResponse {
  /** The gRPC message frame: 5-byte prefix (uncompressed, length) and the DiscoveryResponse. */
  readonly frame: Buffer;
  readonly nonce: string;

  constructor(frame: Buffer, nonce: string) {
    this.frame = frame;
    this.nonce = nonce;
  }

  /** The DiscoveryResponse without the frame prefix (for a serializer that frames it itself). */
  get body(): Buffer {
    return this.frame.subarray(5);
  }
}

const ids = new WeakMap<PackedResource, number>();
let nextId = 0;
let nextNonce = 0;
// Weakly held: a response lives as long as a stream's write queue (or the in-flight record)
// holds it; content sent to one proxy only does not pile up in the cache.
const byKey = new Map<string, WeakRef<EncodedResponse>>();
const cleanup = new FinalizationRegistry<string>((key) => {
  if (!byKey.get(key)?.deref()) byKey.delete(key);
});

function idOf(r: PackedResource): number {
  let id = ids.get(r);
  if (id === undefined) ids.set(r, (id = ++nextId));
  return id;
}

/** The encoded response of `version` carrying `resources` of `typeUrl` (shared when an identical one is alive). */
export function encodedResponse(version: string, typeUrl: string, resources: readonly PackedResource[]): EncodedResponse {
  let key = `${typeUrl}\n${version}\n`;
  for (const r of resources) key += `${idOf(r)},`;
  const hit = byKey.get(key)?.deref();
  if (hit) return hit;
  const nonce = `${(++nextNonce).toString(36)}-${version.slice(version.indexOf('/') + 1)}`;
  const res = new EncodedResponse(encodeFramedDiscoveryResponse({ version_info: version, type_url: typeUrl, nonce, resources: resources.map((r) => r.any) }), nonce);
  byKey.set(key, new WeakRef(res));
  cleanup.register(res, key);
  return res;
}
