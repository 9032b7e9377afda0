// A filter in a listener with `config_discovery` (envoy.config.core.v3.ExtensionConfigSource): an
// HTTP filter of a connection manager, or a network filter of a filter chain, whose config comes
// over ECDS (extension-config.ts). Read once per LDS update:
// - config_source: ads (or self: the listeners come over ADS too), the one stream rig proxy
//   subscribes on; api_config_source and path_config_source are refused by name.
//   initial_fetch_timeout as in every config source (15 s by default; istiod sends 0s: wait for good).
// - type_urls: the config types the filter takes (at least one, each implemented by rig proxy).
// - default_config: compiled with the listener; used when the first config does not come (timeout
//   or NACK), or at once, without warming, with apply_default_config_without_warming.
// Warming, as Envoy's: a listener version whose discovered filter has no config yet (and applies no
// default without warming) waits for it (an init target). Without a config a filter refuses its
// streams (HTTP 500 with the NFCF response flag, as Envoy's missing-config filter) or connections
// (closed, listener.<prefix>.network_extension_config_missing).
// Per stream the filter resolves its config with one field read (provider.current), never by name.
import { Issues, Reader } from '../config/reader.ts';
import type { ProxyContext } from '../context.ts';
import type { Stat } from '../stats/stats.ts';
import { ResponseFlag } from '../response-flags.ts';
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type InitManager, type StreamCallbacks } from './filter.ts';
import { ExtensionConfigProvider, effectiveTypeUrl, type ExtensionCompile, type ExtensionKind } from './extension-config.ts';
import type { DownstreamConnection, NetworkFilter } from '../network/network-filter.ts';

/** Envoy's default initial_fetch_timeout of a config source. */
const INITIAL_FETCH_TIMEOUT_MS = 15_000;

export interface DiscoveryContext {
  readonly proxy: ProxyContext;
  readonly listenerName: string;
  readonly initManager: InitManager;
}

/**
 * The provider of a filter named `name` whose config_discovery is `source`; problems go to
 * `source.issues` (→ the listener update is NACKed). `implemented` says whether rig proxy has a
 * filter of this kind for a type URL; `compile` compiles a config for this filter.
 */
export function discoveredConfig<T>(kind: ExtensionKind, name: string, source: Reader, ctx: DiscoveryContext, implemented: (typeUrl: string) => boolean, compile: ExtensionCompile<T>): ExtensionConfigProvider<T> {
  const issues = source.issues;
  if (!name) issues.error(source.path, 'a filter with config_discovery needs a name: it is the name of the extension config (TypedExtensionConfig) fetched over ECDS');
  const timeoutMs = readConfigSource(source);
  const typeUrls = source.strs('type_urls');
  if (!typeUrls.length) issues.error(source.at('type_urls'), 'config_discovery needs type_urls: the config types the filter accepts');
  for (const [i, t] of typeUrls.entries()) if (!implemented(t)) issues.error(`${source.at('type_urls')}[${i}]`, `no ${kind === 'http_filter' ? 'HTTP' : 'network'} filter of rig proxy takes ${t}`);
  const defaultConfig = source.obj('default_config');
  const withoutWarming = source.bool('apply_default_config_without_warming', false);
  if (withoutWarming && !defaultConfig) issues.error(source.at('apply_default_config_without_warming'), 'needs a default_config to apply');
  source.done();

  const allowed = new Set(typeUrls);
  const provider = new ExtensionConfigProvider<T>(allowed, compile);
  let fallback: T | undefined;
  if (defaultConfig) {
    const t = effectiveTypeUrl(defaultConfig.raw);
    if (!allowed.has(t)) issues.error(defaultConfig.path, `the default config's type ${t || '(none)'} is not one of type_urls`);
    else fallback = compile(defaultConfig, issues, ctx.initManager);
  }
  if (!name || issues.errors.length) return provider;

  const sub = ctx.proxy.extensionConfig(kind, name);
  sub.add(provider as ExtensionConfigProvider<unknown>);
  // A config already received (another listener uses it): taken at once, as Envoy's last config; one
  // this filter cannot take (its type, or its validation) counts config_conflict and is not used.
  if (sub.entry) {
    const tc = sub.entry.raw.typed_config as Record<string, unknown> | undefined;
    if (allowed.has(effectiveTypeUrl(tc))) {
      const own = new Issues();
      const c = compile(new Reader(tc, `extension config ${name}.typed_config`, own), own, ctx.initManager);
      if (!own.errors.length) {
        provider.current = c;
        return provider;
      }
      ctx.proxy.log.warn({ listener: ctx.listenerName, extensionConfig: name, errors: own.errors }, 'ECDS: the config in force does not fit this filter (config_conflict)');
    } else ctx.proxy.log.warn({ listener: ctx.listenerName, extensionConfig: name, type: effectiveTypeUrl(tc) }, "ECDS: the config in force is not of one of this filter's type_urls (config_conflict)");
    sub.stats.conflict.value++;
  }
  if (withoutWarming) {
    provider.current = fallback;
    return provider;
  }
  const log = ctx.proxy.log;
  const timedOut = () => log.warn({ listener: ctx.listenerName, extensionConfig: name, initialFetchTimeoutMs: timeoutMs }, `ECDS: no extension config within initial_fetch_timeout; the listener serves ${fallback === undefined ? `without it (${kind === 'http_filter' ? 'HTTP 500 NFCF' : 'connections closed'})` : 'with its default_config'} until it arrives`);
  ctx.initManager.add(`ECDS extension config ${name}`, (signal) =>
    sub.arrival(timeoutMs, timedOut, signal).then(() => {
      if (provider.current === undefined) provider.current = fallback;
    }),
  );
  return provider;
}

/** The config source's initial_fetch_timeout; refuses sources other than ADS. */
function readConfigSource(source: Reader): number {
  const cs = source.obj('config_source');
  if (!cs) {
    source.issues.error(source.at('config_source'), 'config_discovery needs a config_source (ads: {})');
    return INITIAL_FETCH_TIMEOUT_MS;
  }
  for (const k of ['api_config_source', 'path', 'path_config_source']) {
    if (cs.has(k)) cs.issues.error(cs.at(k), `rig proxy fetches extension configs over its ADS stream only: use config_source.ads (${k} is not supported)`);
  }
  if (!cs.has('ads') && !cs.has('self') && !cs.issues.errors.length) cs.issues.error(cs.path, 'config_source needs ads: {} (rig proxy fetches extension configs over its ADS stream only)');
  const timeoutMs = cs.durationMs('initial_fetch_timeout', INITIAL_FETCH_TIMEOUT_MS);
  cs.accept('ads', 'self', 'resource_api_version', 'authorities');
  cs.done();
  return timeoutMs;
}

// === HTTP filters ===

/** A discovered HTTP filter's config: the factory its type names and what it compiled. */
export interface DiscoveredHttpConfig {
  readonly factory: HttpFilterFactory;
  readonly config: unknown;
}

/** Envoy's missing-config filter: 500, NFCF, the upstream not called. */
function missingConfig(cb: StreamCallbacks): HttpFilter {
  return {
    decodeHeaders: () => {
      cb.sendLocalReply({ status: 500, flags: ResponseFlag.NoFilterConfigFound });
      return FilterStatus.StopIteration;
    },
  };
}

/** Stands in the connection manager's chain for a discovered filter: each stream gets the filter of the config in force. */
export const DISCOVERED_HTTP_FILTER: HttpFilterFactory<ExtensionConfigProvider<DiscoveredHttpConfig>> = {
  name: 'envoy.extension_config_discovery',
  typeUrls: [],
  compile: () => {
    throw new Error('a discovered HTTP filter is compiled through its config_discovery');
  },
  create: (provider, cb) => {
    const c = provider.current;
    return c ? c.factory.create(c.config, cb) : missingConfig(cb);
  },
};

// === network filters ===

/** Stands in a filter chain for a discovered network filter: each connection gets the filter of the config in force. */
export class DiscoveredNetworkFilter implements NetworkFilter {
  private readonly provider: ExtensionConfigProvider<NetworkFilter>;
  private readonly missing: Stat;

  constructor(provider: ExtensionConfigProvider<NetworkFilter>, missing: Stat) {
    this.provider = provider;
    this.missing = missing;
  }

  onConnection(conn: DownstreamConnection): boolean | Promise<boolean> {
    const f = this.provider.current;
    if (f) return f.onConnection(conn);
    this.missing.value++;
    conn.socket.destroy();
    return false;
  }

  drain(): void {
    this.provider.current?.drain?.();
  }
}
