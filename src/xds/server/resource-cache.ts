// Encodes generated resources once: resources shared by many proxies (memoized per snapshot)
// are the same objects, so their Any bytes and hash are computed once per snapshot.
import { createHash } from 'node:crypto';
import { packAny } from '../../envoy/index.ts';
import type { AnyMessage, EnvoyJson } from '../../envoy/index.ts';
import { resourceName } from './generators.ts';

export interface PackedResource {
  name: string;
  any: AnyMessage;
  hash: string;
  json: EnvoyJson;
}

const cache = new WeakMap<EnvoyJson, PackedResource>();

/** Packs a resource (throws EnvoyJsonError when it does not fit its proto type). */
export function pack(typeUrl: string, json: EnvoyJson): PackedResource {
  const hit = cache.get(json);
  if (hit && hit.any.type_url === typeUrl) return hit;
  const any = packAny(typeUrl, json);
  const packed = { name: resourceName(json), any, hash: createHash('sha1').update(any.value).digest('base64'), json };
  cache.set(json, packed);
  return packed;
}
