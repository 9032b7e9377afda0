// Encodes generated resources once and interns them by content. Resources shared by many proxies
// (memoized per snapshot) are the same objects; identical content built again (another namespace
// scope, the next snapshot) is recognised by a digest of its JSON text, which costs ~1% of encoding it
// (measured: 1000 clusters encode in ~2.6 s, stringify in ~25 ms). Interning also keeps the
// per-proxy record of what was sent from pinning old snapshots in memory.
import { createHash } from 'node:crypto';
import { ROUTE_TYPE, packAny } from '../../envoy/index.ts';
import type { AnyMessage, EnvoyJson } from '../../envoy/index.ts';
import { resourceName } from './generators.ts';
import { encodeRouteConfiguration } from './route-encoder.ts';

export interface PackedResource {
  name: string;
  any: AnyMessage;
  hash: string;
  json: EnvoyJson;
}

const byObject = new WeakMap<EnvoyJson, PackedResource>();
const byContent = new Map<string, WeakRef<PackedResource>>();
const byText = new Map<string, WeakRef<PackedResource>>();
const cleanup = new FinalizationRegistry<{ content: string; text: string }>((keys) => {
  if (!byContent.get(keys.content)?.deref()) byContent.delete(keys.content);
  if (!byText.get(keys.text)?.deref()) byText.delete(keys.text);
});

/** Packs a resource (throws EnvoyJsonError when it does not fit its proto type). */
export function pack(typeUrl: string, json: EnvoyJson): PackedResource {
  const hit = byObject.get(json);
  if (hit && hit.any.type_url === typeUrl) return hit;
  // Keyed by a digest of the text, not the text: per-proxy resources (listeners, inbound clusters)
  // would otherwise keep ~40 KB of JSON text each alive for as long as the proxy holds them.
  const text = createHash('sha1').update(`${typeUrl}\n${JSON.stringify(json)}`).digest('base64');
  const same = byText.get(text)?.deref();
  if (same) {
    byObject.set(json, same);
    return same;
  }
  const any = typeUrl === ROUTE_TYPE ? { type_url: typeUrl, value: encodeRouteConfiguration(json) } : packAny(typeUrl, json);
  const hash = createHash('sha1').update(any.value).digest('base64');
  const key = `${typeUrl}#${hash}`;
  const interned = byContent.get(key)?.deref();
  if (interned) {
    byObject.set(json, interned);
    byText.set(text, new WeakRef(interned));
    cleanup.register(interned, { content: key, text });
    return interned;
  }
  const packed = { name: resourceName(json), any, hash, json };
  byContent.set(key, new WeakRef(packed));
  byText.set(text, new WeakRef(packed));
  cleanup.register(packed, { content: key, text });
  byObject.set(json, packed);
  return packed;
}
