// A plugin's root context: created once per (VM, root_id, configuration), started with
// proxy_on_vm_start and proxy_on_configure, ticked by proxy_on_tick, and the parent of the HTTP
// contexts of the streams through the filter.
import type { LocalReply } from '../filter.ts';
import type { NodeInfo } from '../../context.ts';
import { BufferType, WasmResult } from './wasm-abi.ts';
import type { HeaderAccess } from './wasm-headers.ts';
import { pluginProperty, type PluginProps } from './wasm-properties.ts';
import type { CallResponse, HostContext, WasmVm } from './wasm-vm.ts';

export class WasmPlugin implements HostContext, PluginProps {
  readonly id: number;
  readonly vm: WasmVm;
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly configuration: Buffer;
  readonly node: NodeInfo | undefined;
  private tick: NodeJS.Timeout | undefined;

  get root(): WasmPlugin {
    return this;
  }

  constructor(vm: WasmVm, name: string, rootId: string, configuration: Buffer, node: NodeInfo | undefined) {
    this.vm = vm;
    this.name = name;
    this.rootId = rootId;
    this.vmId = vm.o.vmId;
    this.configuration = configuration;
    this.node = node;
    this.id = vm.newContextId();
  }

  /** Creates the root context and starts it; the reason when the plugin refused to start or configure. */
  start(): string | undefined {
    const vm = this.vm;
    vm.register(this);
    vm.rootStarted();
    if (vm.call(this, 'proxy_on_context_create', this.id, 0) === undefined) return vm.failed;
    const started = vm.call(this, 'proxy_on_vm_start', this.id, vm.o.vmConfiguration.length);
    if (started === undefined) return vm.failed;
    if (started === 0 && vm.has('proxy_on_vm_start')) return 'proxy_on_vm_start returned false';
    const configured = vm.call(this, 'proxy_on_configure', this.id, this.configuration.length);
    if (configured === undefined) return vm.failed;
    if (configured === 0 && vm.has('proxy_on_configure')) return 'proxy_on_configure returned false (the plugin refused its configuration)';
    return undefined;
  }

  /** The root context is no longer used (its config was replaced): proxy_on_done, proxy_on_delete. */
  stop(): void {
    this.setTickPeriod(0);
    this.vm.call(this, 'proxy_on_done', this.id);
    this.vm.call(this, 'proxy_on_delete', this.id);
    this.vm.unregister(this);
    this.vm.rootStopped();
  }

  headers(): HeaderAccess | undefined {
    return undefined;
  }

  buffer(type: number): Buffer | undefined {
    return type === BufferType.PluginConfiguration ? this.configuration : undefined;
  }

  setBuffer(): number {
    return WasmResult.NotFound;
  }

  property(path: readonly string[]): Buffer | undefined {
    return pluginProperty(this, path);
  }

  setProperty(): number {
    return WasmResult.NotFound;
  }

  sendLocalResponse(_reply: LocalReply): number {
    return WasmResult.BadArgument;
  }

  continueStream(): number {
    return WasmResult.BadArgument;
  }

  closeStream(): number {
    return WasmResult.BadArgument;
  }

  setTickPeriod(ms: number): number {
    if (this.tick) clearInterval(this.tick);
    this.tick = undefined;
    if (ms > 0) {
      this.tick = setInterval(() => {
        if (this.vm.failed) return this.setTickPeriod(0);
        this.vm.call(this, 'proxy_on_tick', this.id);
      }, ms);
      this.tick.unref();
    }
    return WasmResult.Ok;
  }

  callout(fn: string, token: number, n: number): void {
    this.vm.call(this, fn, this.id, token, n);
  }

  /** A root context has no stream to evaluate an expression against. */
  expressionInput(): undefined {
    return undefined;
  }

  onHttpCallResponse(token: number, res: CallResponse | undefined): void {
    this.vm.callHttpResponse(this, token, res);
  }
}
