// The HTTP filter registry: factories keyed by extension name and by typed_config @type URL.
// Filled by explicit setup() calls (src/proxy/extensions.ts), never by import side effects.
import type { HttpFilterFactory } from './filter.ts';
import { Reader, type Issues } from '../config/reader.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';

const byTypeUrl = new Map<string, HttpFilterFactory>();
const byPerRouteTypeUrl = new Map<string, HttpFilterFactory>();
const byName = new Map<string, HttpFilterFactory>();

export function registerHttpFilter<C, R>(factory: HttpFilterFactory<C, R>): void {
  const f = factory as HttpFilterFactory;
  byName.set(f.name, f);
  for (const t of f.typeUrls) byTypeUrl.set(t, f);
  for (const t of f.perRouteTypeUrls ?? []) byPerRouteTypeUrl.set(t, f);
}

/** The factory for an http_filters entry: by typed_config @type, else by the filter's name. */
export function httpFilterFactory(typeUrl: string | undefined, name: string): HttpFilterFactory | undefined {
  return (typeUrl ? byTypeUrl.get(typeUrl) : undefined) ?? byName.get(name);
}

/**
 * What config about to be applied has to wait for: the loading of the engines of filters whose name
 * or type URLs it mentions (`mentions` tests the config's text or bytes). Undefined when nothing is to load.
 */
export function prepareHttpFilters(mentions: (typeUrl: string) => boolean): Promise<void> | undefined {
  let wait: Promise<void>[] | undefined;
  for (const f of byName.values()) {
    if (!f.prepare || prepared.has(f) || !(mentions(f.name) || f.typeUrls.some(mentions) || f.perRouteTypeUrls?.some(mentions))) continue;
    const p = f.prepare();
    if (p) (wait ??= []).push(p.then(() => void prepared.add(f)));
    else prepared.add(f);
  }
  return wait && Promise.all(wait).then(() => undefined);
}

/** Factories whose engine is loaded: config is no longer searched for their type URLs. */
const prepared = new Set<HttpFilterFactory>();

export function registeredHttpFilters(): string[] {
  return [...byName.keys()].sort();
}

export function registeredHttpFilterTypeUrls(): string[] {
  return [...byTypeUrl.keys()].sort();
}

/**
 * Compiles a typed_per_filter_config map (route, virtual host or weighted cluster) into
 * filter name → compiled per-route config, as Envoy's PerFilterConfigs: a FilterConfig with
 * disabled: true is DISABLED; one with an empty config (no @type) is ENABLED, which runs a filter
 * the connection manager marks disabled; any other entry is the filter's config and enables it too.
 * An unknown type is an error unless the entry is a FilterConfig with is_optional (then ENABLED).
 */
export function compilePerFilterConfigs(r: Reader, key: string, runtime: EnvoyRuntime): ReadonlyMap<string, unknown> | undefined {
  const raw = r.get(key);
  if (raw === undefined) return undefined;
  const out = new Map<string, unknown>();
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    const path = r.at(key) + '.' + name;
    let cfg = v as Record<string, unknown>;
    let optional = false;
    if (cfg?.['@type'] === 'type.googleapis.com/envoy.config.route.v3.FilterConfig') {
      optional = cfg.is_optional === true;
      if (cfg.disabled === true) {
        out.set(name, DISABLED);
        continue;
      }
      if (cfg.config === undefined || cfg.config === null) {
        r.issues.error(path, 'a FilterConfig needs config (an empty config: {} enables the filter here) or disabled: true');
        continue;
      }
      cfg = cfg.config as Record<string, unknown>;
      if (!cfg['@type']) {
        out.set(name, ENABLED);
        continue;
      }
    }
    const typeUrl = String(cfg?.['@type'] ?? '');
    const f = byPerRouteTypeUrl.get(typeUrl);
    if (!f || !f.compilePerRoute) {
      if (optional) {
        r.issues.warn(path, `no filter supports per-route config ${typeUrl}; the filter runs here without it (is_optional)`);
        out.set(name, ENABLED);
      } else r.issues.error(path, `no HTTP filter supports per-route config of type ${typeUrl || '(missing @type)'}`);
      continue;
    }
    out.set(name, f.compilePerRoute(new Reader(cfg, path, r.issues), { issues: r.issues, runtime }));
  }
  return out;
}

/** Per-route marker: the filter is disabled for this route (FilterConfig.disabled). */
export const DISABLED = Symbol('filter disabled');
/** Per-route marker: the filter runs for this route, without a per-route config (FilterConfig with an empty config). */
export const ENABLED = Symbol('filter enabled');

export type { Issues };
