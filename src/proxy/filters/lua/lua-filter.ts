// envoy.filters.http.lua: Envoy's Lua HTTP filter (envoy_on_request / envoy_on_response with the
// stream handle API) on Lua 5.4 in WebAssembly. Config in lua-config.ts, the per-stream coroutine
// driver in lua-stream.ts, the handle API in lua-prelude.ts over lua-host.ts. The VM (wasmoon,
// ~20 ms and ~9 MB resident to load) loads only in a proxy whose config names the filter: config
// mentioning its type URLs waits for prepare() (registry.ts prepareHttpFilters). Streams of a chain
// without this filter never touch the VM.
import type { Reader } from '../../config/reader.ts';
import type { HttpFilterFactory } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import type { LuaFilterConfig, LuaPerRoute } from './lua-config.ts';
import type * as LuaRuntime from './lua-runtime.ts';

export const LUA_FILTER_NAME = 'envoy.filters.http.lua';
export const LUA_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua';
export const LUA_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute';

let runtime: typeof LuaRuntime | undefined;
let loading: Promise<void> | undefined;

/** Loads the Lua VM and the filter's modules (once); resolves when compile() can run. */
export function loadLuaVm(): Promise<void> {
  return (loading ??= import('./lua-runtime.ts').then((m) => {
    runtime = m;
  }));
}

/** A caller applied Lua config without prepareHttpFilters() first: an error (NACK), never a crash. */
function notLoaded(r: Reader): void {
  r.issues.error(r.path, 'the Lua VM is not loaded (config naming envoy.filters.http.lua is applied after prepareHttpFilters())');
  r.accept(...Object.keys(r.raw));
}

export const luaFilterFactory: HttpFilterFactory<LuaFilterConfig, LuaPerRoute> = {
  name: LUA_FILTER_NAME,
  typeUrls: [LUA_TYPE],
  perRouteTypeUrls: [LUA_PER_ROUTE_TYPE],
  prepare: () => (runtime ? undefined : loadLuaVm()),
  compile(r, ctx) {
    if (runtime) return runtime.readLuaConfig(r, ctx);
    notLoaded(r);
    return undefined as unknown as LuaFilterConfig;
  },
  compilePerRoute(r) {
    if (runtime) return runtime.readLuaPerRoute(r);
    notLoaded(r);
    return { kind: 'disabled' };
  },
  create: (c, cb) => new runtime!.LuaStreamFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(luaFilterFactory);
}
