// Protobuf merge (Message.MergeFrom) on Envoy's canonical JSON shape, for EnvoyFilter MERGE:
// set scalars replace, messages and maps merge field by field, repeated fields append; an Any
// (`@type`) of the same type merges its fields; of another type it is kept, as Istio does when
// it cannot merge (logged once, naming the patch). Both sides are in
// the shape the generators produce (normalizePatchValue drops defaults, as proto merge skips them).
// Known gap: setting one member of a oneof does not clear a sibling member already set.
import type { EnvoyJson } from '../../../envoy/index.ts';
import { warnOnce } from '../../../model/config-warnings.ts';

function isObject(v: unknown): v is EnvoyJson {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `dst` merged with `src`, as a new object (neither argument is changed); `origin` names the patch in messages. */
export function protoMerge(dst: EnvoyJson, src: EnvoyJson, origin: string): EnvoyJson {
  if (src['@type'] !== undefined && dst['@type'] !== undefined && src['@type'] !== dst['@type']) {
    warnOnce('envoyfilter', `EnvoyFilter ${origin}: MERGE of a ${String(src['@type'])} into a ${String(dst['@type'])} is not possible; that part is left as generated`);
    return dst;
  }
  const out: EnvoyJson = { ...dst };
  for (const [k, v] of Object.entries(src)) {
    const cur = out[k];
    if (Array.isArray(v)) out[k] = Array.isArray(cur) ? [...cur, ...structuredClone(v)] : structuredClone(v);
    else if (isObject(v) && isObject(cur)) out[k] = protoMerge(cur, v, origin);
    else out[k] = structuredClone(v);
  }
  return out;
}
