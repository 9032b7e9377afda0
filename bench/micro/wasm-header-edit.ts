// Micro-benchmark of envoy.filters.http.wasm per request (not part of the tests):
//   node bench/micro/wasm-header-edit.ts [--n 200000]
// The filter compiled from config as the HCM compiles it, then per request: a stream filter created
// and its decodeHeaders + encodeHeaders + onDestroy run, as the connection manager calls them. The
// plugin (WebAssembly text built with wabt) reads request header x-in and adds x-out with its value,
// beside a plugin that exports no HTTP callbacks (what the context's create/done/log/delete cost).
import { parseArgs } from 'node:util';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { Stats } from '../../src/proxy/stats/stats.ts';
import { silentLogger } from '../../src/core/log.ts';
import { wasmFilterFactory } from '../../src/proxy/filters/wasm/wasm-filter.ts';
import type { FilterCompileContext, RequestHead, ResponseHead, StreamCallbacks } from '../../src/proxy/filters/filter.ts';
import { buildPlugin, type PluginSource } from '../../test/helpers/wasm-plugins.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' } } });
const n = Number(values.n);

const EDIT_SOURCE: PluginSource = {
  strings: { in: 'x-in', out: 'x-out' },
  imports: ['proxy_get_header_map_value', 'proxy_add_header_map_value'],
  body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 0) (i32.const $in$) (i32.const #in#) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const $out$) (i32.const #out#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
    (i32.const 0))`,
};

async function compile(src: PluginSource, name: string) {
  const issues = new Issues();
  const ctx = { name: 'envoy.filters.http.wasm', statPrefix: 'bench', stats: new Stats(), issues, log: silentLogger } as unknown as FilterCompileContext;
  const bytes = (await buildPlugin(src)).toString('base64');
  const c = wasmFilterFactory.compile(new Reader({ config: { name, vm_config: { vm_id: name, code: { local: { inline_bytes: bytes } } } } }, 'wasm', issues), ctx);
  if (issues.errors.length) throw new Error(issues.errors.join('\n'));
  return c;
}

const EDIT = await compile(EDIT_SOURCE, 'edit');
const NOTHING = await compile({ imports: [], body: '' }, 'nothing');
const cb = { perRouteConfig: () => undefined, clearRouteCache: () => undefined, streamInfo: {}, connection: {} } as unknown as StreamCallbacks;

let sink = 0;
function wasm(config: typeof EDIT): void {
  const head: RequestHead = { method: 'GET', path: '/', authority: 'svc', scheme: 'http', headers: { 'x-in': 'abc' } };
  const f = wasmFilterFactory.create(config, cb);
  f.decodeHeaders!(head, true);
  const res: ResponseHead = { status: 200, headers: {} };
  f.encodeHeaders!(res, true);
  f.onDestroy?.();
  sink += (head.headers['x-out']?.length ?? 0) + res.status;
}

function nsPer(fn: () => void): number {
  for (let i = 0; i < 20_000; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

const best = { edit: Infinity, nothing: Infinity };
for (let r = 0; r < 3; r++) {
  best.edit = Math.min(best.edit, nsPer(() => wasm(EDIT)));
  best.nothing = Math.min(best.nothing, nsPer(() => wasm(NOTHING)));
}
if (sink === 42) console.log('');
console.log(`Wasm filter, a plugin reads a header and adds one: ${best.edit.toFixed(0)} ns/request`);
console.log(`Wasm filter, a plugin without HTTP callbacks:       ${best.nothing.toFixed(0)} ns/request`);
