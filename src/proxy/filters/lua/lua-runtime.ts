// What lua-filter.ts loads with the Lua VM (a dynamic import, only in proxies whose config uses Lua).
export { readLuaConfig, readLuaPerRoute } from './lua-config.ts';
export { LuaStreamFilter } from './lua-stream.ts';
