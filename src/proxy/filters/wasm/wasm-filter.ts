// envoy.filters.http.wasm: Proxy-Wasm plugins (ABI 0.2.1, what Istio's WasmPlugin and the Rust,
// Go and C++ SDKs target) on Node's WebAssembly. Config and VM sharing in wasm-config.ts, the
// host functions in wasm-vm.ts, the root context in wasm-plugin.ts, a stream's HTTP context in
// wasm-stream.ts.
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type StreamCallbacks } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { readWasmConfig, type WasmFilterConfig } from './wasm-config.ts';
import { reloadIfFailed } from './wasm-failure-policy.ts';
import { WasmStream } from './wasm-stream.ts';

export const WASM_FILTER_NAME = 'envoy.filters.http.wasm';
export const WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';

/**
 * A plugin whose remote code could not be fetched or started (local code that does not load is
 * refused, NACK; the listener warms while remote code is fetched): its streams go as after a VM
 * failure, on with fail_open, else 503 (403 when code fetched as Istio's agent does could not be).
 */
class PluginNotLoaded implements HttpFilter {
  private readonly c: WasmFilterConfig;
  private readonly cb: StreamCallbacks;
  constructor(c: WasmFilterConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }
  decodeHeaders(): FilterStatus {
    if (this.c.failOpen) return FilterStatus.Continue;
    // What Istio's agent puts in place of a plugin it could not fetch: an RBAC filter denying all.
    if (this.c.fetchFailed) this.cb.sendLocalReply({ status: 403, body: 'RBAC: access denied', details: 'rbac_access_denied_matched_policy[none]' });
    else this.cb.sendLocalReply({ status: 503, details: 'wasm_not_loaded' });
    return FilterStatus.StopIteration;
  }
}

export const wasmFilterFactory: HttpFilterFactory<WasmFilterConfig> = {
  name: WASM_FILTER_NAME,
  typeUrls: [WASM_TYPE],
  compile: (r, ctx) => readWasmConfig(r, ctx),
  create: (c, cb) => {
    if (c.reload) reloadIfFailed(c);
    return c.plugin ? new WasmStream(c, cb) : new PluginNotLoaded(c, cb);
  },
};

export function setup(): void {
  registerHttpFilter(wasmFilterFactory);
}
