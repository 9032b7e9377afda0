// envoy.filters.network.wasm: a Proxy-Wasm plugin's stream (TCP) context per downstream connection,
// with the config, VM and root context sharing of the HTTP filter (wasm-config.ts). The connection
// goes to proxy_on_new_connection; the bytes tcp_proxy relays, or http_connection_manager reads and
// writes (network/filtered-socket.ts), to proxy_on_downstream_data and proxy_on_upstream_data
// (readable and writable as buffers 2 and 3; a pause holds them and hands them again with the next
// ones, as Envoy's read buffer; proxy_continue_stream(Downstream) lets held client bytes go); its end
// to proxy_on_downstream_connection_close / proxy_on_upstream_connection_close (peer type local or
// remote; before http_connection_manager, which has no upstream connection of its own, only the
// downstream one), then proxy_on_done, _log, _delete. proxy_close_stream(Downstream / Upstream)
// closes that side (before http_connection_manager: the client's connection).
import type { Reader } from '../../config/reader.ts';
import type { ConnectionDataFilter, DataRelay, DownstreamConnection, NetworkCompileContext, NetworkFilter, NetworkFilterFactory } from '../../network/network-filter.ts';
import { registerNetworkFilter } from '../../network/network-filter.ts';
import { newStreamInfo, type StreamInfo } from '../../stream-info.ts';
import type { ConnectionInfo, LocalReply } from '../filter.ts';
import { Action, BufferType, StreamType, WasmResult } from './wasm-abi.ts';
import { readWasmConfig, type WasmFilterConfig } from './wasm-config.ts';
import { reloadIfFailed } from './wasm-failure-policy.ts';
import type { HeaderAccess } from './wasm-headers.ts';
import { shareConnectionFilterState } from './wasm-state.ts';
import type { ExpressionInput } from './wasm-foreign.ts';
import { StreamContext } from './wasm-stream-context.ts';

export const WASM_NETWORK_FILTER_NAME = 'envoy.filters.network.wasm';
export const WASM_NETWORK_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';

const EMPTY = Buffer.alloc(0);
/** proxy-wasm's PeerType. */
const PeerType = { Local: 1, Remote: 2 } as const;

/** One connection's stream context. */
class WasmConnection extends StreamContext implements ConnectionDataFilter {
  readonly network = true;
  private readonly failOpen: boolean;
  private readonly conn: DownstreamConnection;
  readonly info: StreamInfo;
  readonly request = undefined;
  readonly response = undefined;
  readonly responseTrailers = undefined;
  private relay: DataRelay | undefined;
  /** tcp_proxy took the connection (relayed it, or told of its end before): it tells of the connection's end. */
  private relayed = false;
  /** Bytes the plugin paused on, per direction, handed to it again with the next ones. */
  private heldDown: Buffer | undefined;
  private heldUp: Buffer | undefined;
  /** The data the running callback sees (and may replace), and which direction. */
  private dataNow: Buffer | undefined;
  private dataDownstream = true;
  private continueAsked = false;
  /** Resolves onConnection's promise when the plugin paused on proxy_on_new_connection. */
  private resumeChain: ((go: boolean) => void) | undefined;
  private off = false;
  private ended = false;

  constructor(c: WasmFilterConfig, conn: DownstreamConnection) {
    super(c.plugin!);
    this.failOpen = c.failOpen;
    this.conn = conn;
    const info = (this.info = newStreamInfo(conn.direction, ''));
    info.downstreamRemoteAddress = `${conn.info.remoteAddress}:${conn.info.remotePort}`;
    info.downstreamLocalAddress = `${conn.info.localAddress}:${conn.info.localPort}`;
    info.downstreamRemoteIp = conn.info.remoteAddress;
    info.requestedServerName = conn.info.sni;
    info.mtls = conn.info.tls && conn.info.peerPrincipal !== undefined;
    // Whatever their lifespan, what the plugin sets is the connection's: tcp_proxy and the HTTP streams read it there.
    info.filterState = conn.filterState ??= {};
    shareConnectionFilterState(conn.info, info.filterState);
  }

  get connection(): ConnectionInfo {
    return this.conn.info;
  }

  /** proxy_on_new_connection: true to go on, false when the connection was closed, a promise while the plugin holds it. */
  start(): boolean | Promise<boolean> {
    const vm = this.plugin.vm;
    if (vm.failed) return this.fail();
    this.id = vm.newContextId();
    vm.register(this);
    if (vm.call(this, 'proxy_on_context_create', this.id, this.plugin.id) === undefined) return this.fail();
    this.conn.socket.once('close', () => this.done());
    (this.conn.dataFilters ??= []).push(this);
    const a = this.invoke('proxy_on_new_connection');
    if (a === undefined) return this.fail();
    if (this.off) return false;
    if (a === Action.Continue || this.continueAsked) {
      this.continueAsked = false;
      return true;
    }
    // The listener runs the filters on a flowing socket: held, its bytes wait for the next filters.
    this.conn.socket.pause();
    return new Promise<boolean>((resolve) => (this.resumeChain = resolve));
  }

  /** The VM failed: fail_open goes on without the plugin, else the connection is closed. */
  private fail(): boolean {
    this.off = true;
    if (this.failOpen) return true;
    this.conn.socket.destroy();
    return false;
  }

  // === the relayed bytes (ConnectionDataFilter) ===

  relayStarted(relay: DataRelay): void {
    this.relay = relay;
    // tcp_proxy tells of the connection's end (closed()); the HCM does not.
    this.relayed = !relay.http;
  }

  onData(fromDownstream: boolean, chunk: Buffer, end: boolean): Buffer {
    if (this.off) return chunk;
    const held = fromDownstream ? this.heldDown : this.heldUp;
    const buf = held ? Buffer.concat([held, chunk]) : chunk;
    this.dataNow = buf;
    this.dataDownstream = fromDownstream;
    const a = this.invoke(fromDownstream ? 'proxy_on_downstream_data' : 'proxy_on_upstream_data', buf.length, end ? 1 : 0);
    const out = this.dataNow;
    this.dataNow = undefined;
    if (a === undefined) {
      if (!this.fail()) return EMPTY;
      return buf;
    }
    const asked = fromDownstream && this.continueAsked;
    this.continueAsked = false;
    // At the end, what the plugin holds goes on: the side is closing.
    const hold = a !== Action.Continue && !asked && !end;
    if (fromDownstream) this.heldDown = hold ? buf : undefined;
    else this.heldUp = hold ? buf : undefined;
    return hold ? EMPTY : out;
  }

  closed(downstreamFirst: boolean, remote: boolean): void {
    this.relayed = true;
    if (this.off || !this.id) return;
    const peer = remote ? PeerType.Remote : PeerType.Local;
    // The side that did not close first was closed by this proxy.
    this.invoke('proxy_on_downstream_connection_close', downstreamFirst ? peer : PeerType.Local);
    this.invoke('proxy_on_upstream_connection_close', downstreamFirst ? PeerType.Local : peer);
  }

  private done(): void {
    if (this.ended || !this.id) return;
    this.ended = true;
    const vm = this.plugin.vm;
    if (!this.relayed && !this.off) {
      // Not tcp_proxy's (http_connection_manager's, or another terminal filter's): only the client's side closes, by whom its FIN tells.
      this.invoke('proxy_on_downstream_connection_close', this.conn.socket.readableEnded ? PeerType.Remote : PeerType.Local);
      if (!this.relay && (vm.has('proxy_on_downstream_data') || vm.has('proxy_on_upstream_data'))) {
        vm.warnOnce('network-data', 'proxy_on_downstream_data / proxy_on_upstream_data run only in a chain ending in tcp_proxy or http_connection_manager; rig proxy passes no other terminal filter\'s bytes through network filters');
      }
    }
    this.resumeChain?.(false);
    this.resumeChain = undefined;
    this.off = true;
    this.invoke('proxy_on_done');
    this.invoke('proxy_on_log');
    this.invoke('proxy_on_delete');
    vm.unregister(this);
  }

  /** After a callback outside onData (an HTTP or gRPC call's answer): resume what the plugin continued. */
  protected settle(): void {
    if (this.ended) return;
    if (this.plugin.vm.failed && !this.off) {
      if (!this.fail()) return;
      this.continueAsked = true;
    }
    if (!this.continueAsked) return;
    this.continueAsked = false;
    const resume = this.resumeChain;
    this.resumeChain = undefined;
    if (resume) {
      // Flowing again on the next tick, after the next filters (run on this promise) took the socket.
      this.conn.socket.resume();
      resume(true);
    }
    const held = this.heldDown;
    this.heldDown = undefined;
    if (held && this.relay) this.relay.forward(true, held);
  }

  // === host context ===

  headers(): HeaderAccess | undefined {
    return undefined;
  }

  buffer(type: number): Buffer | undefined {
    if (type === BufferType.DownstreamData) return this.dataDownstream ? this.dataNow : undefined;
    if (type === BufferType.UpstreamData) return this.dataDownstream ? undefined : this.dataNow;
    return this.plugin.buffer(type);
  }

  setBuffer(type: number, value: Buffer): number {
    if (this.dataNow === undefined || (type === BufferType.DownstreamData) !== this.dataDownstream || (type !== BufferType.DownstreamData && type !== BufferType.UpstreamData)) return WasmResult.NotFound;
    this.dataNow = value;
    return WasmResult.Ok;
  }

  filterState(): Record<string, unknown> {
    return this.info.filterState!;
  }

  sendLocalResponse(_reply: LocalReply): number {
    return WasmResult.BadArgument;
  }

  /** Downstream: held client bytes go on (and a paused new connection); Upstream is Unimplemented, as in Envoy. */
  continueStream(type: number): number {
    if (type === StreamType.Upstream) return WasmResult.Unimplemented;
    if (type !== StreamType.Downstream) return WasmResult.BadArgument;
    this.continueAsked = true;
    if (!this.inCallback) queueMicrotask(() => this.settle());
    return WasmResult.Ok;
  }

  closeStream(type: number): number {
    if (type !== StreamType.Downstream && type !== StreamType.Upstream) return WasmResult.BadArgument;
    const downstream = type === StreamType.Downstream;
    if (this.relay) this.relay.close(downstream);
    else if (downstream) queueMicrotask(() => this.conn.socket.end());
    else return WasmResult.NotFound;
    return WasmResult.Ok;
  }

  protected callbacksOff(): boolean {
    return this.ended;
  }

  expressionInput(): ExpressionInput {
    return { info: this.info, request: undefined, response: undefined };
  }
}

class WasmNetworkFilter implements NetworkFilter {
  private readonly c: WasmFilterConfig;
  constructor(c: WasmFilterConfig) {
    this.c = c;
  }
  onConnection(conn: DownstreamConnection): boolean | Promise<boolean> {
    if (this.c.reload) reloadIfFailed(this.c);
    if (this.c.plugin) return new WasmConnection(this.c, conn).start();
    // Not loaded (the listener warmed until its remote code settled: the fetch or the start failed): as after a VM failure.
    if (this.c.failOpen) return true;
    conn.socket.destroy();
    return false;
  }
}

export const wasmNetworkFilterFactory: NetworkFilterFactory = {
  name: WASM_NETWORK_FILTER_NAME,
  typeUrls: [WASM_NETWORK_TYPE],
  terminal: false,
  compile(r: Reader, ctx: NetworkCompileContext): NetworkFilter {
    const p = ctx.proxy;
    const c = readWasmConfig(r, { name: WASM_NETWORK_FILTER_NAME, statPrefix: ctx.listenerName, stats: p.stats, issues: ctx.issues, clusters: p.clusters, server: { healthCheckFailed: false }, runtime: p.runtime, log: p.log, node: p.node, initManager: ctx.initManager });
    return new WasmNetworkFilter(c);
  },
};

export function setup(): void {
  registerNetworkFilter(wasmNetworkFilterFactory);
}
