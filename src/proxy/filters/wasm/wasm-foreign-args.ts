// The protobuf messages Envoy's Wasm foreign functions take and answer, as Envoy declares them in
// source/extensions/common/wasm/ext/{declare_property,set_envoy_filter_state,sign,verify_signature}.proto
// (package envoy.source.extensions.common.wasm). They are no part of Envoy's API, so they are not
// among the compiled descriptors of src/envoy/: the few types are built here, on first use.
import protobuf from 'protobufjs';

/** WasmType: how a declared property's bytes are read (CEL sees a string for String, else bytes). */
export const WasmType = { Bytes: 0, String: 1, FlatBuffers: 2, Protobuf: 3 } as const;

/** LifeSpan: where a property or filter state object is kept. */
export const LifeSpan = { FilterChain: 0, DownstreamRequest: 1, DownstreamConnection: 2 } as const;

export interface DeclarePropertyArguments {
  name: string;
  readonly: boolean;
  type: number;
  schema: Uint8Array;
  span: number;
}

export interface SetEnvoyFilterStateArguments {
  path: string;
  value: string;
  span: number;
}

export interface SignArguments {
  hash_function: string;
  private_key: Uint8Array;
  text: Uint8Array;
  private_key_pem: string;
}

export interface VerifySignatureArguments {
  hash_function: string;
  public_key: Uint8Array;
  signature: Uint8Array;
  text: Uint8Array;
  public_key_pem: string;
}

const field = (id: number, type: string) => ({ id, type });

const DESCRIPTOR = {
  nested: {
    WasmType: { values: WasmType },
    LifeSpan: { values: LifeSpan },
    DeclarePropertyArguments: { fields: { name: field(1, 'string'), readonly: field(2, 'bool'), type: field(3, 'WasmType'), schema: field(4, 'bytes'), span: field(5, 'LifeSpan') } },
    SetEnvoyFilterStateArguments: { fields: { path: field(1, 'string'), value: field(2, 'string'), span: field(3, 'LifeSpan') } },
    SignArguments: { fields: { hash_function: field(1, 'string'), private_key: field(2, 'bytes'), text: field(3, 'bytes'), private_key_pem: field(4, 'string') } },
    SignResult: { fields: { result: field(1, 'bool'), signature: field(2, 'bytes'), error: field(3, 'string') } },
    VerifySignatureArguments: { fields: { hash_function: field(1, 'string'), public_key: field(2, 'bytes'), signature: field(3, 'bytes'), text: field(4, 'bytes'), public_key_pem: field(5, 'string') } },
    VerifySignatureResult: { fields: { result: field(1, 'bool'), error: field(2, 'string') } },
  },
};

let ns: protobuf.Namespace | undefined;

function type(name: string): protobuf.Type {
  ns ??= protobuf.Root.fromJSON({ nested: { envoy: { nested: { source: { nested: { extensions: { nested: { common: { nested: { wasm: DESCRIPTOR } } } } } } } } } }).lookup('envoy.source.extensions.common.wasm') as protobuf.Namespace;
  return ns.lookupType(name);
}

/** Decodes `name` from `bytes` with every field present (proto3 defaults); undefined when the bytes are no such message. */
export function decodeArgs<T>(name: 'DeclarePropertyArguments' | 'SetEnvoyFilterStateArguments' | 'SignArguments' | 'VerifySignatureArguments', bytes: Uint8Array): T | undefined {
  const t = type(name);
  try {
    return t.toObject(t.decode(bytes), { defaults: true, enums: Number, bytes: Buffer as never }) as T;
  } catch {
    return undefined;
  }
}

/** Encodes a SignResult or VerifySignatureResult. */
export function encodeResult(name: 'SignResult' | 'VerifySignatureResult', value: Record<string, unknown>): Buffer {
  const t = type(name);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
}
