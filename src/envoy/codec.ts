// Encoding and decoding of Envoy resources between their JSON shape (snake_case, proto3 JSON
// mapping, `@type` on Any) and protobuf bytes / google.protobuf.Any.
import type protobuf from 'protobufjs';
import { messageType } from './protos.ts';
import { TYPE_URL_PREFIX } from './type-urls.ts';
import { EnvoyJsonError, fromJson, type JsonIssue } from './json.ts';

/** An Envoy resource or config fragment in its JSON shape. */
export type EnvoyJson = Record<string, unknown>;

/** Options that give Envoy's JSON shape when decoding. */
export const JSON_SHAPE: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: String, json: true, defaults: false, oneofs: false };

function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Encodes a JSON-shaped message of the given full type name to protobuf bytes. */
export function encodeMessage(typeName: string, obj: EnvoyJson): Uint8Array {
  const t = messageType(typeName);
  const issues: JsonIssue[] = [];
  const ready = fromJson(t, obj, '', issues);
  if (issues.length) throw new EnvoyJsonError(typeName, issues);
  return t.encode(t.fromObject(ready)).finish();
}

/**
 * Checks a JSON-shaped message against its proto type; returns every problem with its field path.
 * With singleValueLists (Envoy's config files), a single value where a list belongs is made a list
 * of one in `obj`, as Envoy's JSON parser takes it (its sandboxes write `filters:` with one map).
 */
export function checkMessage(typeName: string, obj: unknown, opts: { singleValueLists?: boolean } = {}): JsonIssue[] {
  for (;;) {
    const issues: JsonIssue[] = [];
    fromJson(messageType(typeName), obj, '', issues);
    const wraps = opts.singleValueLists ? issues.filter((i) => i.wrapInList) : [];
    if (!wraps.length) return issues;
    // The wrapped values were not walked yet: check again, into them.
    for (const i of wraps) i.wrapInList!();
  }
}

/** Decodes protobuf bytes of the given full type name into the JSON shape. */
export function decodeMessage(typeName: string, bytes: Uint8Array): EnvoyJson {
  const t = messageType(typeName);
  return t.toObject(t.decode(bytes), JSON_SHAPE) as EnvoyJson;
}

/** A google.protobuf.Any as it travels inside DiscoveryResponse. */
export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

/** Packs a JSON-shaped resource into an Any. */
export function packAny(typeUrl: string, obj: EnvoyJson): AnyMessage {
  return { type_url: typeUrl, value: encodeMessage(typeNameOf(typeUrl), obj) };
}

/** Unpacks an Any into the JSON shape (nested Anys become `{"@type": ..., ...}`). */
export function unpackAny(any: AnyMessage): EnvoyJson {
  return decodeMessage(typeNameOf(any.type_url), any.value);
}

/** Normalizes a JSON-shaped message by a round trip through protobuf (drops defaults, canonical durations). */
export function normalize(typeName: string, obj: EnvoyJson): EnvoyJson {
  return decodeMessage(typeName, encodeMessage(typeName, obj));
}

export function typeUrlOf(typeName: string): string {
  return TYPE_URL_PREFIX + typeName;
}
