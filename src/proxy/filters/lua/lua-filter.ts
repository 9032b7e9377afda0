// envoy.filters.http.lua: Envoy's Lua HTTP filter (envoy_on_request / envoy_on_response with the
// stream handle API) on Lua 5.4 in WebAssembly. Config in lua-config.ts, the per-stream coroutine
// driver in lua-stream.ts, the handle API in lua-prelude.ts over lua-host.ts. Streams of a chain
// without this filter never touch the VM.
import type { HttpFilterFactory } from '../filter.ts';
import { registerHttpFilter } from '../registry.ts';
import { readLuaConfig, readLuaPerRoute, type LuaFilterConfig, type LuaPerRoute } from './lua-config.ts';
import { LuaStreamFilter } from './lua-stream.ts';

export const LUA_FILTER_NAME = 'envoy.filters.http.lua';
export const LUA_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua';
export const LUA_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute';

export const luaFilterFactory: HttpFilterFactory<LuaFilterConfig, LuaPerRoute> = {
  name: LUA_FILTER_NAME,
  typeUrls: [LUA_TYPE],
  perRouteTypeUrls: [LUA_PER_ROUTE_TYPE],
  compile: (r, ctx) => readLuaConfig(r, ctx),
  compilePerRoute: (r) => readLuaPerRoute(r),
  create: (c, cb) => new LuaStreamFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(luaFilterFactory);
}
