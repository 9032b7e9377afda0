// What the plugin's stream contexts share, the HTTP one (wasm-stream.ts) and the network one
// (wasm-network.ts): calling into the VM with `inCallback` set (a host function called meanwhile
// acts after the callback returns, else on a microtask), the answers of the HTTP and gRPC calls made
// for the stream (the stream then settles what the callback asked for), and the properties.
import type { StreamInfo } from '../../stream-info.ts';
import type { ConnectionInfo, HeaderMap, LocalReply, RequestHead, ResponseHead } from '../filter.ts';
import type { ExpressionInput } from './wasm-foreign.ts';
import type { HeaderAccess } from './wasm-headers.ts';
import type { WasmPlugin } from './wasm-plugin.ts';
import { pluginProperty, streamProperty, type StreamProps } from './wasm-properties.ts';
import { setWasmProperty, type PropertyPrototype, type StateOwner } from './wasm-state.ts';
import type { CallResponse, HostContext } from './wasm-vm.ts';

export abstract class StreamContext implements HostContext, StreamProps, StateOwner {
  id = 0;
  protected readonly plugin: WasmPlugin;
  /** A callback of this context runs now. */
  protected inCallback = false;
  abstract readonly network: boolean;
  abstract readonly info: StreamInfo;
  abstract readonly connection: ConnectionInfo;
  abstract readonly request: RequestHead | undefined;
  abstract readonly response: ResponseHead | undefined;
  abstract readonly responseTrailers: HeaderMap | undefined;

  constructor(plugin: WasmPlugin) {
    this.plugin = plugin;
  }

  get root(): WasmPlugin {
    return this.plugin;
  }

  get state(): StateOwner {
    return this;
  }

  abstract filterState(span: number): Record<string, unknown>;
  abstract headers(type: number, edit?: boolean): HeaderAccess | undefined;
  abstract buffer(type: number): Buffer | undefined;
  abstract setBuffer(type: number, value: Buffer): number;
  abstract sendLocalResponse(reply: LocalReply): number;
  abstract continueStream(type: number): number;
  abstract closeStream(type: number): number;
  abstract expressionInput(): ExpressionInput;

  /** The plugin no longer hears of this stream's calls. */
  protected abstract callbacksOff(): boolean;

  /** After a callback the stream did not run (a call's answer): act on what it asked for. */
  protected abstract settle(): void;

  protected invoke(fn: string, ...args: number[]): number | undefined {
    this.inCallback = true;
    try {
      return this.plugin.vm.call(this, fn, this.id, ...args);
    } finally {
      this.inCallback = false;
    }
  }

  onHttpCallResponse(token: number, res: CallResponse | undefined): void {
    if (this.callbacksOff()) return;
    this.inCallback = true;
    try {
      this.plugin.vm.callHttpResponse(this, token, res);
    } finally {
      this.inCallback = false;
    }
    this.settle();
  }

  callout(fn: string, token: number, n: number): void {
    if (this.callbacksOff()) return;
    this.invoke(fn, token, n);
    this.settle();
  }

  property(path: readonly string[]): Buffer | undefined {
    return pluginProperty(this.plugin, path) ?? streamProperty(this, path);
  }

  setProperty(path: readonly string[], value: Buffer, declared: PropertyPrototype | undefined): number {
    return setWasmProperty(this, path, value, declared);
  }

  setTickPeriod(ms: number): number {
    return this.plugin.setTickPeriod(ms);
  }
}
