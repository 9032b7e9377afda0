// Envoy's stats tag extraction (stats_config.stats_tags, use_all_default_tags): a stat's name is
// matched by every tag extractor; each match gives a tag (name, value) and a part of the name to
// drop. What remains is the tag-extracted name, which Prometheus shows as the metric's name, with
// the tags as its labels: `cluster.backend.upstream_rq_200` is
// `envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="backend"}`.
// Extraction runs when stats are scraped, once per stat name (cached), never on the request path.
import type { Issues, Reader } from '../config/reader.ts';

export interface Tag {
  readonly name: string;
  readonly value: string;
}

export interface TagExtracted {
  readonly name: string;
  readonly tags: readonly Tag[];
}

interface Extractor {
  readonly name: string;
  /** The first token a stat's name must have for this extractor to run (undefined: every name). */
  readonly prefix: string | undefined;
  /** Adds the tag and the [start, end) range to drop when it matches. */
  extract(stat: string, tokens: readonly string[], tags: Tag[], drop: [number, number][]): void;
}

/** A regex extractor: group 1 is dropped from the name, group 2 (or 1) is the value. */
function regexExtractor(name: string, pattern: string, negativeValue?: string): Extractor {
  const re = new RegExp(pattern, 'd');
  return {
    name,
    prefix: /^\^([a-zA-Z0-9_]+)(?:\\\.|\(\?=\\\.\))/.exec(pattern)?.[1],
    extract(stat, _tokens, tags, drop) {
      const m = re.exec(stat);
      const span = m?.indices?.[1];
      if (!m || !span) return;
      const value = m.length > 2 ? (m[2] ?? '') : m[1];
      if (negativeValue !== undefined && value === negativeValue) return;
      tags.push({ name, value });
      drop.push([span[0], span[1]]);
    },
  };
}

/**
 * A tokenized extractor (Envoy's faster form of its default tags): the pattern's dot-separated
 * tokens match the name's, `*` any one token, `**` any number (at least one), `$` one token that
 * is the value and is dropped with its dot.
 */
function tokenExtractor(name: string, pattern: string): Extractor {
  const want = pattern.split('.');
  const search = (tokens: readonly string[], i: number, j: number, found: { index: number }): boolean => {
    for (; j < want.length && i < tokens.length; i++, j++) {
      const w = want[j];
      if (w === '**') {
        if (j === want.length - 1) return true;
        for (let k = i + 1; k <= tokens.length; k++) if (search(tokens, k, j + 1, found)) return true;
        return false;
      }
      if (w === '$') found.index = i;
      else if (w !== '*' && w !== tokens[i]) return false;
    }
    return j === want.length && i === tokens.length;
  };
  return {
    name,
    prefix: want[0] === '$' || want[0] === '*' ? undefined : want[0],
    extract(_stat, tokens, tags, drop) {
      const found = { index: -1 };
      if (!search(tokens, 0, 0, found) || found.index < 0) return;
      let start = 0;
      for (let i = 0; i < found.index; i++) start += tokens[i].length + 1;
      const value = tokens[found.index];
      tags.push({ name, value });
      drop.push([start, start + value.length + 1]);
    },
  };
}

// Envoy's well-known regex fragments (source/common/config/well_known_names.cc).
const ADDRESS = String.raw`(?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+)`;
const TAG_VALUE = String.raw`[^\.]+`;
const CIPHER = String.raw`[\w-]+`;
const LISTENER_OR_CLUSTER_WITH_NAME = String.raw`(?:listener|cluster)\..*?`;

/** Envoy's default tags, in its order: [name, regex | tokens, negative value]. */
const DEFAULT_TAGS: readonly (readonly [string, { re: string; not?: string } | { tokens: string }])[] = [
  ['envoy.response_code', { re: String.raw`_rq(_(\d{3}))$` }],
  ['envoy.response_code_class', { re: String.raw`_rq_((\d))xx$` }],
  ['envoy.dynamo_partition_id', { re: String.raw`^http\.${TAG_VALUE}\.dynamodb\.table\.${TAG_VALUE}\.capacity\.${TAG_VALUE}(\.__partition_id=(\w{7}))$` }],
  ['envoy.dynamo_operation', { re: String.raw`^http\.${TAG_VALUE}\.dynamodb.(?:operation|table\.${TAG_VALUE}\.capacity)(\.(${TAG_VALUE}))(?:\.|$)` }],
  ['envoy.mongo_callsite', { tokens: 'mongo.*.collection.*.callsite.$.query.**' }],
  ['envoy.dynamo_table', { re: String.raw`^http\.${TAG_VALUE}\.dynamodb.(?:table|error)\.((${TAG_VALUE})\.)` }],
  ['envoy.mongo_collection', { tokens: 'mongo.*.collection.$.**.query.*' }],
  ['envoy.mongo_cmd', { tokens: 'mongo.*.cmd.$.**' }],
  ['envoy.grpc_bridge_method', { tokens: 'cluster.*.grpc.*.$.**' }],
  ['envoy.http_user_agent', { tokens: 'http.*.user_agent.$.**' }],
  ['envoy.virtual_cluster', { tokens: 'vhost.*.vcluster.$.**' }],
  ['envoy.fault_downstream_cluster', { tokens: 'http.*.fault.$.**' }],
  ['envoy.ssl_cipher', { re: String.raw`^listener\..*?\.ssl\.ciphers(\.(${CIPHER}))$` }],
  ['envoy.ssl_curve', { re: String.raw`^${LISTENER_OR_CLUSTER_WITH_NAME}\.ssl\.curves(\.(${CIPHER}))$` }],
  ['envoy.ssl_sigalg', { re: String.raw`^${LISTENER_OR_CLUSTER_WITH_NAME}\.ssl\.sigalgs(\.(${CIPHER}))$` }],
  ['envoy.ssl_version', { re: String.raw`^${LISTENER_OR_CLUSTER_WITH_NAME}\.ssl\.versions(\.(TLSv\d\.\d))$` }],
  ['cipher_suite', { re: String.raw`^cluster\.${TAG_VALUE}\.ssl\.ciphers(\.(${CIPHER}))$` }],
  ['envoy.grpc_bridge_service', { tokens: 'cluster.*.grpc.$.**' }],
  ['envoy.tcp_prefix', { tokens: 'tcp.$.**' }],
  ['envoy.udp_prefix', { tokens: 'udp.$.**' }],
  ['envoy.clientssl_prefix', { tokens: 'auth.clientssl.$.**' }],
  ['envoy.ratelimit_prefix', { tokens: 'ratelimit.$.**' }],
  ['envoy.cluster_name', { tokens: 'cluster.$.**' }],
  ['envoy.http_conn_manager_prefix', { re: String.raw`^listener\..*?\.http\.((${TAG_VALUE})\.)` }],
  ['envoy.ext_authz_prefix', { tokens: 'cluster.*.ext_authz.$.**' }],
  ['envoy.ext_authz_prefix', { tokens: 'http.*.ext_authz.$.**' }],
  ['envoy.http_conn_manager_prefix', { tokens: 'http.$.**' }],
  ['envoy.worker_id', { re: String.raw`^(?:listener\.(?:${ADDRESS}|${TAG_VALUE})|server|listener_manager|thread_local_cluster_manager)\.worker_((\d+)\.)` }],
  ['envoy.listener_address', { re: String.raw`^listener\.((${ADDRESS}|${TAG_VALUE})\.)`, not: 'admin' }],
  ['envoy.virtual_host', { tokens: 'vhost.$.**' }],
  ['envoy.mongo_prefix', { tokens: 'mongo.$.**' }],
  ['envoy.rds_route_config', { re: String.raw`^http\.${TAG_VALUE}\.rds\.(([\w-\./]+)\.)\w+?$` }],
  ['envoy.scoped_rds_config', { re: String.raw`^http\.${TAG_VALUE}\.scoped_rds\.(([\w-\.]+)\.)\w+?$` }],
  ['envoy.route', { tokens: 'vhost.*.route.$.**' }],
  ['envoy.thrift_prefix', { tokens: 'thrift.$.**' }],
  ['envoy.redis_prefix', { tokens: 'redis.$.**' }],
  ['envoy.local_http_ratelimit_prefix', { tokens: '$.http_local_rate_limit.**' }],
  ['envoy.local_network_ratelimit_prefix', { tokens: 'local_rate_limit.$.**' }],
  ['envoy.local_listener_ratelimit_prefix', { tokens: 'listener_local_ratelimit.$.**' }],
  ['envoy.dns_filter_prefix', { tokens: 'dns_filter.$.**' }],
  ['envoy.connection_limit_prefix', { tokens: 'connection_limit.$.**' }],
  ['envoy.rbac_policy_name', { re: String.raw`^http\.${TAG_VALUE}\.rbac\.(?:${TAG_VALUE}\.)?policy\.((${TAG_VALUE})\.)(allowed|shadow_allowed|denied|shadow_denied)$` }],
  ['envoy.rbac_prefix', { tokens: '$.rbac.**' }],
  ['envoy.rbac_http_prefix', { re: String.raw`^http\.${TAG_VALUE}\.rbac\.((${TAG_VALUE})\.).*?`, not: 'policy' }],
  ['envoy.proxy_protocol_prefix', { re: String.raw`^proxy_proto\.((${TAG_VALUE})\.).+$`, not: 'versions' }],
  ['envoy.proxy_protocol_version', { re: String.raw`^proxy_proto\.((?:${TAG_VALUE}\.)?versions\.v(\d)\.)\w+$` }],
  ['envoy.google_grpc_client_prefix', { tokens: 'grpc.$.**' }],
  ['envoy.tls_certificate', { re: String.raw`^${LISTENER_OR_CLUSTER_WITH_NAME}\.ssl\.certificate\.((${TAG_VALUE})\.).*$` }],
  ['envoy.xds_resource_name', { re: String.raw`^sds\.((${TAG_VALUE})\.).+` }],
];

function defaultExtractor([name, spec]: (typeof DEFAULT_TAGS)[number]): Extractor {
  return 'tokens' in spec ? tokenExtractor(name, spec.tokens) : regexExtractor(name, spec.re, spec.not);
}

// Envoy runs configured tag regexes with std::regex (ECMAScript), whose bracket expressions take
// POSIX classes such as [[:digit:]] (Istio's own tags use them); JavaScript's RegExp does not.
const POSIX_CLASSES: Record<string, string> = {
  alnum: 'a-zA-Z0-9',
  alpha: 'a-zA-Z',
  blank: ' \\t',
  digit: '\\d',
  lower: 'a-z',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\s',
  upper: 'A-Z',
  w: '\\w',
  xdigit: '0-9A-Fa-f',
};

function ecmaScriptPattern(pattern: string): string {
  return pattern.replace(/\[:([a-z]+):\]/g, (whole, c: string) => POSIX_CLASSES[c] ?? whole);
}

export class TagProducer {
  readonly #withoutPrefix: Extractor[] = [];
  readonly #byPrefix = new Map<string, Extractor[]>();
  readonly #fixed: Tag[];
  readonly #cache = new Map<string, TagExtracted>();

  constructor(extractors: readonly Extractor[], fixed: readonly Tag[] = []) {
    this.#fixed = [...fixed];
    for (const e of extractors) {
      if (e.prefix === undefined) this.#withoutPrefix.push(e);
      else {
        const list = this.#byPrefix.get(e.prefix);
        if (list) list.push(e);
        else this.#byPrefix.set(e.prefix, [e]);
      }
    }
  }

  /** Envoy's default: every default tag, nothing else. */
  static defaults(): TagProducer {
    return new TagProducer(DEFAULT_TAGS.map(defaultExtractor));
  }

  /** The tag-extracted name and the tags of a stat's name. */
  extract(stat: string): TagExtracted {
    const hit = this.#cache.get(stat);
    if (hit) return hit;
    const tags: Tag[] = [...this.#fixed];
    const drop: [number, number][] = [];
    const tokens = stat.split('.');
    for (const e of this.#withoutPrefix) e.extract(stat, tokens, tags, drop);
    for (const e of this.#byPrefix.get(tokens[0]) ?? []) e.extract(stat, tokens, tags, drop);
    const out = { name: drop.length ? removeRanges(stat, drop) : stat, tags };
    this.#cache.set(stat, out);
    return out;
  }

  /** Forgets the names of stats that went away (a cluster or listener removed). */
  forgetPrefix(prefix: string): void {
    for (const k of this.#cache.keys()) if (k.startsWith(prefix)) this.#cache.delete(k);
  }
}

function removeRanges(s: string, ranges: [number, number][]): string {
  const keep = new Uint8Array(s.length).fill(1);
  for (const [a, b] of ranges) keep.fill(0, a, Math.min(b, s.length));
  let out = '';
  for (let i = 0; i < s.length; i++) if (keep[i]) out += s[i];
  return out;
}

/**
 * Reads stats_config's tags: the default tags unless use_all_default_tags is false, then each
 * of stats_tags (a regex, a fixed value, or a default tag's name alone to take its regex).
 */
export function readTagProducer(r: Reader): TagProducer {
  const useDefaults = r.bool('use_all_default_tags', true);
  const allowOverrides = r.bool('allow_default_tag_overrides', false);
  const extractors: Extractor[] = [];
  const fixed: Tag[] = [];
  const custom = new Set<string>();
  r.objs('stats_tags').forEach((t) => {
    const name = t.str('tag_name');
    if (!name) t.issues.error(t.at('tag_name'), 'a stats tag needs a tag_name');
    if (custom.has(name)) t.issues.error(t.at('tag_name'), `tag "${name}" is specified twice`);
    custom.add(name);
    if (t.has('regex') && t.has('fixed_value')) t.issues.error(t.path, 'set regex or fixed_value, not both');
    if (t.has('fixed_value')) fixed.push({ name, value: t.str('fixed_value') });
    else if (t.has('regex')) {
      const e = compileTagRegex(name, t.str('regex'), t.at('regex'), t.issues);
      if (e) extractors.push(e);
    } else {
      const defaults = DEFAULT_TAGS.filter(([n]) => n === name);
      if (!defaults.length) t.issues.error(t.path, `tag "${name}" has no regex and is not one of Envoy's default tags; give it a regex or a fixed_value`);
      extractors.push(...defaults.map(defaultExtractor));
    }
    t.done();
  });
  if (useDefaults) {
    const clash = [...custom].filter((n) => DEFAULT_TAGS.some(([d]) => d === n));
    if (clash.length && !allowOverrides) r.issues.error(r.at('stats_tags'), `${clash.join(', ')} ${clash.length > 1 ? 'are' : 'is'} a default tag already (use_all_default_tags is on); remove it, or set allow_default_tag_overrides`);
    const defaults = DEFAULT_TAGS.filter(([n]) => !(allowOverrides && custom.has(n))).map(defaultExtractor);
    extractors.unshift(...defaults);
  }
  return new TagProducer(extractors, fixed);
}

function compileTagRegex(name: string, pattern: string, path: string, issues: Issues): Extractor | undefined {
  try {
    const e = regexExtractor(name, ecmaScriptPattern(pattern));
    if (!/\((?!\?)/.test(pattern)) issues.error(path, `the regex of tag "${name}" needs a capture group: the first is removed from the name, the second (or the first) is the value`);
    return e;
  } catch (err) {
    issues.error(path, `invalid regex for tag "${name}": ${(err as Error).message}`);
    return undefined;
  }
}
