// Micro-benchmark of envoy.filters.http.lua per request (not part of the tests):
//   node bench/micro/lua-header-edit.ts [--n 200000]
// The filter compiled from config as the HCM compiles it, then per request: a stream filter created
// and its decodeHeaders + encodeHeaders run, as the connection manager calls them. Compares a script
// whose envoy_on_request reads one header and adds another (a coroutine on a pooled Lua thread, two
// host calls) with a script without envoy_on_request/envoy_on_response (what a stream pays when its
// route gives the filter nothing to run) and with the same edit written in JS.
import { parseArgs } from 'node:util';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { Stats } from '../../src/proxy/stats/stats.ts';
import { loadLuaVm, luaFilterFactory } from '../../src/proxy/filters/lua/lua-filter.ts';
import type { FilterCompileContext, RequestHead, ResponseHead, StreamCallbacks } from '../../src/proxy/filters/filter.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' } } });
const n = Number(values.n);
await loadLuaVm();

function compile(code: string) {
  const issues = new Issues();
  const ctx = { name: 'envoy.filters.http.lua', statPrefix: 'bench', stats: new Stats(), issues } as unknown as FilterCompileContext;
  const c = luaFilterFactory.compile(new Reader({ inline_code: code }, 'lua', issues), ctx);
  if (issues.errors.length) throw new Error(issues.errors.join('\n'));
  return c;
}

const EDIT = compile(`
function envoy_on_request(h)
  local v = h:headers():get("x-in")
  h:headers():add("x-out", v .. "-seen")
end`);
const NOTHING = compile('local x = 1');
const cb = { perRouteConfig: () => undefined, clearRouteCache: () => undefined } as unknown as StreamCallbacks;

let sink = 0;
function lua(config: typeof EDIT): void {
  const head: RequestHead = { method: 'GET', path: '/', authority: 'svc', scheme: 'http', headers: { 'x-in': 'abc' } };
  const f = luaFilterFactory.create(config, cb);
  f.decodeHeaders!(head, true);
  const res: ResponseHead = { status: 200, headers: {} };
  f.encodeHeaders!(res, true);
  f.onDestroy?.();
  sink += (head.headers['x-out']?.length ?? 0) + res.status;
}

function js(): void {
  const head: RequestHead = { method: 'GET', path: '/', authority: 'svc', scheme: 'http', headers: { 'x-in': 'abc' } };
  head.headers['x-out'] = `${head.headers['x-in'] as string}-seen`;
  sink += head.headers['x-out'].length;
}

function nsPer(fn: () => void): number {
  for (let i = 0; i < 20_000; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

// Alternate to even out JIT and GC effects; report the best of three.
const best = { edit: Infinity, nothing: Infinity, js: Infinity };
for (let r = 0; r < 3; r++) {
  best.edit = Math.min(best.edit, nsPer(() => lua(EDIT)));
  best.nothing = Math.min(best.nothing, nsPer(() => lua(NOTHING)));
  best.js = Math.min(best.js, nsPer(js));
}
console.log(`Lua filter, envoy_on_request reads a header and adds one: ${best.edit.toFixed(0)} ns/request`);
console.log(`Lua filter, script without envoy_on_request/response:    ${best.nothing.toFixed(0)} ns/request`);
console.log(`the same header edit in JS:                               ${best.js.toFixed(0)} ns/request`);
if (sink === 42) console.log('');
