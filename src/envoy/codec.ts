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
 * With envoyFileForms (Envoy's config files), the forms Envoy's JSON parser also takes are
 * rewritten in `obj` to the canonical ones: a single value where a list belongs becomes a list of
 * one (the sandboxes write `filters:` with one map), an enum name in lower case its upper-case
 * name (`type: strict_dns`).
 */
export function checkMessage(typeName: string, obj: unknown, opts: { envoyFileForms?: boolean } = {}): JsonIssue[] {
  for (;;) {
    const issues: JsonIssue[] = [];
    fromJson(messageType(typeName), obj, '', issues);
    const rewrites = opts.envoyFileForms ? issues.filter((i) => i.rewrite) : [];
    if (!rewrites.length) return issues;
    // What a rewritten value holds was not walked yet: check again, into it.
    for (const i of rewrites) i.rewrite!();
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
