// What Wasm plugins put in filter state, kept where Envoy keeps it. proxy_set_property stores a value
// under "wasm.<path>": as bytes, or as its declaration says (the declare_property foreign function:
// its type, readonly — set once —, and lifespan). set_envoy_filter_state builds one of the filter
// state objects other parts of the proxy read, by key: envoy.tcp_proxy.cluster (tcp_proxy's cluster
// for the connection, from a network filter), envoy.network.application_protocols (the ALPN a TLS
// upstream is offered for the request, from an HTTP filter) and envoy.string (a plain string).
// A network context's state, whatever its lifespan, is its connection's filter state, which tcp_proxy
// shares; an HTTP context keeps FilterChain and DownstreamRequest in the request's filter state and
// DownstreamConnection in its connection's (readable by the later requests' plugins).
import { APPLICATION_PROTOCOLS_STATE as APPLICATION_PROTOCOLS } from '../../upstream/cluster.ts';
import type { ConnectionInfo } from '../filter.ts';
import { TCP_PROXY_CLUSTER_STATE } from '../../tcp/tcp-proxy.ts';
import { WasmResult } from './wasm-abi.ts';
import { LifeSpan, WasmType } from './wasm-foreign-args.ts';

/** A property's declaration (declare_property). */
export interface PropertyPrototype {
  readonly readonly: boolean;
  readonly type: number;
  readonly schema: Buffer;
  readonly span: number;
}

/** Where a stream context keeps filter state. */
export interface StateOwner {
  /** A network filter's context (envoy.filters.network.wasm), else an HTTP filter's. */
  readonly network: boolean;
  /** The filter state of `span`, created on first use. */
  filterState(span: number): Record<string, unknown>;
}


interface ObjectFactory {
  /** The object, from the plugin's string. */
  create(value: string): unknown;
  /** The context whose state rig proxy reads it from: the proxy honours it there only. */
  readonly where: 'network' | 'http' | 'any';
}

const FACTORIES: Record<string, ObjectFactory> = {
  [TCP_PROXY_CLUSTER_STATE]: { create: (v) => v, where: 'network' },
  [APPLICATION_PROTOCOLS]: { create: (v) => v.split(','), where: 'http' },
  'envoy.string': { create: (v) => v, where: 'any' },
};

const HONOURED = 'rig proxy honours envoy.tcp_proxy.cluster (from a network filter before tcp_proxy), envoy.network.application_protocols (from an HTTP filter) and envoy.string';

const connectionStates = new WeakMap<ConnectionInfo, Record<string, unknown>>();

/** The filter state of a downstream connection, shared by the contexts of its requests; created when `create`. */
export function connectionFilterState(c: ConnectionInfo, create: boolean): Record<string, unknown> | undefined {
  let s = connectionStates.get(c);
  if (!s && create) connectionStates.set(c, (s = {}));
  return s;
}

/** A network filter's connection state (DownstreamConnection.filterState) is the one its HTTP streams see too. */
export function shareConnectionFilterState(c: ConnectionInfo, state: Record<string, unknown>): void {
  connectionStates.set(c, state);
}

/** proxy_set_property: "wasm.<path joined by .>" in the state of the declared lifespan; BadArgument for a readonly one set before. */
export function setWasmProperty(owner: StateOwner, path: readonly string[], value: Buffer, declared: PropertyPrototype | undefined): number {
  const key = 'wasm.' + path.join('.');
  const state = owner.filterState(declared?.span ?? LifeSpan.FilterChain);
  if (declared?.readonly && state[key] !== undefined) return WasmResult.BadArgument;
  // As Envoy: an undeclared property is a WasmState of type bytes (the default prototype).
  state[key] = declared?.type === WasmType.String ? value.toString('utf8') : Buffer.from(value);
  return WasmResult.Ok;
}

/**
 * set_envoy_filter_state: the object for `key` in the state of `span`. A key rig proxy does not
 * honour (or not from this kind of filter) answers NotFound, as Envoy a key it has no factory for,
 * and warns once naming it.
 */
export function setEnvoyFilterState(owner: StateOwner, key: string, value: string, span: number, warnOnce: (what: string, msg: string) => void): number {
  const f = FACTORIES[key];
  const kind = owner.network ? 'network' : 'http';
  if (!f || (f.where !== 'any' && f.where !== kind)) {
    const why = f ? `it is read only from ${f.where === 'network' ? 'a network' : 'an HTTP'} filter's state` : 'no part of rig proxy reads it';
    warnOnce(`filter-state:${kind}:${key}`, `set_envoy_filter_state ${key} from ${kind === 'network' ? 'a network' : 'an HTTP'} filter: ${why}; it returns NotFound (${HONOURED})`);
    return WasmResult.NotFound;
  }
  // The router reads the ALPN override from the request's state only.
  if (key === APPLICATION_PROTOCOLS && span === LifeSpan.DownstreamConnection) {
    warnOnce(`filter-state:span:${key}`, `set_envoy_filter_state ${key} with lifespan DownstreamConnection: rig proxy keeps it for the request that set it`);
    span = LifeSpan.DownstreamRequest;
  }
  owner.filterState(span)[key] = f.create(value);
  return WasmResult.Ok;
}
