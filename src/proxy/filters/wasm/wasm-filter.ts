// envoy.filters.http.wasm: Proxy-Wasm plugins (ABI 0.2.1, what Istio's WasmPlugin and the Rust,
// Go and C++ SDKs target) on Node's WebAssembly. Config and VM sharing in wasm-config.ts, the
// host functions in wasm-vm.ts, the root context in wasm-plugin.ts, a stream's HTTP context in
// wasm-stream.ts.
import type { HttpFilterFactory } from '../filter.ts';
import { FilterStatus } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { readWasmConfig, type WasmFilterConfig } from './wasm-config.ts';
import { WasmStream } from './wasm-stream.ts';

export const WASM_FILTER_NAME = 'envoy.filters.http.wasm';
export const WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';

/** The config did not load (it is refused, NACK, so no stream should meet it). */
const notLoaded = { decodeHeaders: () => FilterStatus.Continue };

export const wasmFilterFactory: HttpFilterFactory<WasmFilterConfig> = {
  name: WASM_FILTER_NAME,
  typeUrls: [WASM_TYPE],
  compile: (r, ctx) => readWasmConfig(r, ctx),
  create: (c, cb) => (c.plugin ? new WasmStream(c, cb) : notLoaded),
};

export function setup(): void {
  registerHttpFilter(wasmFilterFactory);
}
