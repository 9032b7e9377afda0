// The stats_config of Istio's sidecar and gateway bootstrap (tools/packaging/common/envoy_bootstrap.json):
// Istio turns off Envoy's default tags and sets its own, so Prometheus sees Istio's names, e.g.
// envoy_cluster_upstream_rq{response_code="200",cluster_name="outbound|9080||reviews.default.svc.cluster.local"}
// and envoy_http_inbound_0_0_0_0_80_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"}.
// Its stats_matcher (istioStatsMatcher below) keeps only Istio's own metrics and a few Envoy stats
// unless a proxy asks for more (ProxyConfig proxyStatsMatcher, sidecar.istio.io/statsInclusion*).
const IP_LIKE = String.raw`(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)`;

export const ISTIO_STATS_CONFIG = {
  use_all_default_tags: false,
  stats_tags: [
    { tag_name: 'cluster_name', regex: String.raw`^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)` },
    { tag_name: 'tcp_prefix', regex: String.raw`^tcp\.((.*?)\.)\w+?$` },
    { tag_name: 'response_code', regex: String.raw`_rq(_(\d{3}))$` },
    { tag_name: 'response_code_class', regex: String.raw`_rq(_(\dxx))$` },
    { tag_name: 'http_conn_manager_listener_prefix', regex: String.raw`^listener(?=\.).*?\.http\.` + IP_LIKE },
    { tag_name: 'http_conn_manager_prefix', regex: String.raw`^http\.` + IP_LIKE },
    { tag_name: 'listener_address', regex: String.raw`^listener\.` + IP_LIKE },
    { tag_name: 'mongo_prefix', regex: String.raw`^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$` },
    { tag_name: 'cache', regex: String.raw`(cache\.(.+?)\.)` },
    { tag_name: 'component', regex: String.raw`(component\.(.+?)\.)` },
    { tag_name: 'tag', regex: String.raw`(tag\.(.+?);\.)` },
    { tag_name: 'wasm_filter', regex: String.raw`(wasm_filter\.(.+?)\.)` },
    { tag_name: 'authz_enforce_result', regex: String.raw`rbac(\.(allowed|denied))` },
    { tag_name: 'authz_dry_run_action', regex: String.raw`(\.istio_dry_run_(allow|deny)_)` },
    { tag_name: 'authz_dry_run_result', regex: String.raw`(\.shadow_(allowed|denied))` },
  ],
};

/** Envoy stats Istio's agent always keeps (pkg/bootstrap/config.go: "required stats are used by readiness checks"). */
const REQUIRED_PREFIXES = ['cluster_manager', 'listener_manager', 'server', 'cluster.xds-grpc', 'wasm'];
/** Authorization policy results (and their dry-run ones). */
const RBAC_SUFFIXES = ['rbac.allowed', 'rbac.denied', 'shadow_allowed', 'shadow_denied'];
/** With EXIT_ON_ZERO_ACTIVE_CONNECTIONS the agent waits for downstream connections to end. */
const DRAIN_SUFFIX = 'downstream_cx_active';
/** Stats of a VirtualService route's stat_prefix. */
const REQUIRED_REGEXPS = [String.raw`vhost\..*\.route\..*`];

/** ProxyConfig proxyStatsMatcher (Istio's mesh.v1alpha1.ProxyConfig.ProxyStatsMatcher). */
export interface ProxyStatsMatcher {
  inclusionPrefixes?: string[];
  inclusionSuffixes?: string[];
  inclusionRegexps?: string[];
}

/** The pod annotations that replace proxyStatsMatcher's lists, each a comma-separated list. */
export const STATS_INCLUSION_ANNOTATIONS = {
  prefixes: 'sidecar.istio.io/statsInclusionPrefixes',
  suffixes: 'sidecar.istio.io/statsInclusionSuffixes',
  regexps: 'sidecar.istio.io/statsInclusionRegexps',
} as const;

export interface IstioStatsMatcherInput {
  proxyStatsMatcher?: ProxyStatsMatcher;
  /** The proxy's pod annotations (node metadata ANNOTATIONS). */
  annotations?: Record<string, string>;
  /** Node metadata INSTANCE_IPS: "{pod_ip}" in a pattern stands for each of them. */
  instanceIps: string[];
  exitOnZeroActiveConnections?: boolean;
}

/**
 * The stats_matcher of Istio's bootstrap, as pilot-agent fills its template: "reporter=" (Istio's
 * standard metrics, older name encoding), then each list (an annotation, when set, instead of
 * proxyStatsMatcher's, then the required ones; "{pod_ip}" expanded), then "component" and "istio"
 * (istio_build, and Istio's metrics: istio_requests_total...). Only the patterns are Istio's:
 * rig proxy keeps Istio's metrics apart from Envoy's stats, and shows them whatever the matcher.
 */
export function istioStatsMatcher(input: IstioStatsMatcherInput): { inclusion_list: { patterns: object[] } } {
  const list = (annotation: string, fromProxyConfig: string[] | undefined, required: string[]): string[] => {
    const given = input.annotations?.[annotation];
    const own = given ? given.split(',') : (fromProxyConfig ?? []);
    return [...own, ...required].flatMap((p) => (p.includes('{pod_ip}') ? input.instanceIps.map((ip) => p.replaceAll('{pod_ip}', ip)) : [p]));
  };
  const m = input.proxyStatsMatcher;
  const prefixes = list(STATS_INCLUSION_ANNOTATIONS.prefixes, m?.inclusionPrefixes, REQUIRED_PREFIXES);
  const suffixes = list(STATS_INCLUSION_ANNOTATIONS.suffixes, m?.inclusionSuffixes, input.exitOnZeroActiveConnections ? [...RBAC_SUFFIXES, DRAIN_SUFFIX] : RBAC_SUFFIXES);
  const regexps = list(STATS_INCLUSION_ANNOTATIONS.regexps, m?.inclusionRegexps, REQUIRED_REGEXPS);
  return {
    inclusion_list: {
      patterns: [
        { prefix: 'reporter=' },
        ...prefixes.map((prefix) => ({ prefix })),
        ...suffixes.map((suffix) => ({ suffix })),
        ...regexps.map((regex) => ({ safe_regex: { regex } })),
        { prefix: 'component' },
        { prefix: 'istio' },
      ],
    },
  };
}

/** Problems in a ProxyConfig proxyStatsMatcher (`at` is its path), e.g. a list that is not of strings. */
export function checkProxyStatsMatcher(v: unknown, at: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v !== 'object' || Array.isArray(v)) return [`${at}: must be an object with inclusionPrefixes, inclusionSuffixes, inclusionRegexps (lists of strings)`];
  const errors: string[] = [];
  for (const [k, list] of Object.entries(v)) {
    if (k !== 'inclusionPrefixes' && k !== 'inclusionSuffixes' && k !== 'inclusionRegexps') errors.push(`${at}.${k}: unknown field (Istio's ProxyStatsMatcher has inclusionPrefixes, inclusionSuffixes, inclusionRegexps)`);
    else if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) errors.push(`${at}.${k}: must be a list of strings`);
  }
  return errors;
}
