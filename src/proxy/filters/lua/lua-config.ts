// envoy.extensions.filters.http.lua.v3.Lua and LuaPerRoute, compiled once per config update: each
// source (default_source_code, else the deprecated inline_code; each source_codes entry; a route's
// source_code) loads into its own Lua state. A script that does not load is a config error (NACK)
// that gives the field and Lua's message with the line.
import type { Logger } from '../../../core/log.ts';
import type { Reader } from '../../config/reader.ts';
import { readDataSource } from '../../config/data-source.ts';
import type { Stat } from '../../stats/stats.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { compileScript, type LuaScript } from './lua-script.ts';

export interface LuaFilterConfig {
  /** The filter's name in the chain: the key of its per-route config and of route metadata(). */
  readonly name: string;
  readonly defaultScript: LuaScript | undefined;
  readonly named: ReadonlyMap<string, LuaScript>;
  /** http.<stat_prefix>.lua[.<filter stat_prefix>].errors */
  readonly errors: Stat;
  readonly clusters: ClusterManager;
  readonly log: Logger | undefined;
}

export type LuaPerRoute = { readonly kind: 'disabled' } | { readonly kind: 'name'; readonly name: string } | { readonly kind: 'script'; readonly script: LuaScript };

/**
 * Loads `code` as chunk `chunk` (the name Lua's messages give with the line: inline_code:3: ...); a Lua
 * error (syntax, or one raised while the script's top level runs) is reported at field path `at`.
 */
function load(r: Reader, at: string, chunk: string, code: string): LuaScript | undefined {
  const s = compileScript(code, chunk);
  if (typeof s === 'string') {
    r.issues.error(at, `the Lua script does not load: ${s}`);
    return undefined;
  }
  return s;
}

export function readLuaConfig(r: Reader, ctx: { name: string; statPrefix: string; stats: { counter(name: string): Stat }; clusters: ClusterManager; log?: Logger }): LuaFilterConfig {
  let defaultScript: LuaScript | undefined;
  const source = r.obj('default_source_code');
  const inline = r.str('inline_code');
  if (source) {
    const code = readDataSource(source, 'a Lua source');
    if (code !== undefined) defaultScript = load(r, source.path, 'default_source_code', code);
    if (inline) r.issues.warn(r.at('inline_code'), 'inline_code is ignored when default_source_code is set, as in Envoy');
  } else if (inline) defaultScript = load(r, r.at('inline_code'), 'inline_code', inline);
  const named = new Map<string, LuaScript>();
  const codes = r.get('source_codes');
  if (codes !== undefined) {
    const sub = r.obj('source_codes')!;
    for (const name of Object.keys(codes as object)) {
      const e = sub.obj(name)!;
      const code = readDataSource(e, 'a Lua source');
      const s = code === undefined ? undefined : load(r, e.path, `source_codes.${name}`, code);
      if (s) named.set(name, s);
    }
    sub.accept(...Object.keys(codes as object));
  }
  const prefix = r.str('stat_prefix');
  // clear_route_cache (newer Envoy, default true): rig proxy always re-matches the route after the script changed request headers.
  if (r.has('clear_route_cache') && !r.bool('clear_route_cache', true)) r.issues.warn(r.at('clear_route_cache'), 'clear_route_cache: false is not supported: rig proxy re-matches the route after a script changed request headers');
  r.done();
  return {
    name: ctx.name,
    defaultScript,
    named,
    errors: ctx.stats.counter(`http.${ctx.statPrefix}.lua.${prefix ? prefix + '.' : ''}errors`),
    clusters: ctx.clusters,
    log: ctx.log,
  };
}

export function readLuaPerRoute(r: Reader): LuaPerRoute {
  let out: LuaPerRoute = { kind: 'disabled' };
  const set = ['disabled', 'name', 'source_code'].filter((k) => r.has(k));
  if (set.length !== 1) r.issues.error(r.path, `LuaPerRoute needs exactly one of disabled, name, source_code${set.length ? ` (has ${set.join(', ')})` : ''}`);
  if (r.has('name')) {
    const name = r.str('name');
    if (!name) r.issues.error(r.at('name'), 'name must not be empty');
    out = { kind: 'name', name };
  } else if (r.has('source_code')) {
    const src = r.obj('source_code')!;
    const code = readDataSource(src, 'a Lua source');
    const s = code === undefined ? undefined : load(r, src.path, 'source_code', code);
    if (s) out = { kind: 'script', script: s };
  } else if (r.has('disabled') && r.bool('disabled', true) !== true) r.issues.error(r.at('disabled'), 'disabled must be true (as LuaPerRoute validates)');
  r.done();
  return out;
}
