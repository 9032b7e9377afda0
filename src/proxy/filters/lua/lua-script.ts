// A compiled Lua script: its own Lua state with the stream handle prelude, the script run once at
// load (its globals and require()s), and references to envoy_on_request / envoy_on_response. A
// state is closed when nothing uses its script any more (the config was replaced and its streams ended).
import path from 'node:path';
import { LuaState } from './lua-vm.ts';
import { PRELUDE } from './lua-prelude.ts';
import { HOST_FUNCTIONS } from './lua-host.ts';

export interface LuaScript {
  readonly state: LuaState;
  readonly onRequest: number | undefined;
  readonly onResponse: number | undefined;
  readonly requestHandle: number;
  readonly responseHandle: number;
}

const closer = new FinalizationRegistry<LuaState>((s) => s.close());

/** Lua's package.path for require(): LUA_PATH when set, else Lua's own ./?.lua;./?/init.lua (both relative to the working directory). */
function luaPath(): string {
  const env = process.env.LUA_PATH_5_4 ?? process.env.LUA_PATH;
  const def = ['./?.lua', './?/init.lua'].map((p) => path.join(process.cwd(), p)).join(';');
  return env ? env.replace(';;', `;${def};`) : def;
}

/** Compiles `code` as chunk `name`; a string is the error (Lua's message names the chunk and line). */
export function compileScript(code: string, name: string): LuaScript | string {
  const state = new LuaState();
  for (const [fname, fn] of HOST_FUNCTIONS) state.setGlobalFunction(`__h_${fname}`, fn);
  state.setGlobalString('__lua_path', luaPath());
  const preludeError = state.run(PRELUDE, '=prelude');
  if (preludeError) {
    state.close();
    throw new Error(`the Lua prelude does not load: ${preludeError}`);
  }
  const requestHandle = state.globalRef('__request_handle')!;
  const responseHandle = state.globalRef('__response_handle')!;
  state.run('__request_handle, __response_handle = nil, nil', '=prelude');
  const err = state.run(code, `=${name}`);
  if (err) {
    state.close();
    return err;
  }
  const script: LuaScript = { state, onRequest: state.functionRef('envoy_on_request'), onResponse: state.functionRef('envoy_on_response'), requestHandle, responseHandle };
  closer.register(script, state);
  return script;
}
