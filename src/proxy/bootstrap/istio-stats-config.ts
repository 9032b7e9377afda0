// The stats_config of Istio's sidecar and gateway bootstrap (tools/packaging/common/envoy_bootstrap.json):
// Istio turns off Envoy's default tags and sets its own, so Prometheus sees Istio's names, e.g.
// envoy_cluster_upstream_rq{response_code="200",cluster_name="outbound|9080||reviews.default.svc.cluster.local"}
// and envoy_http_inbound_0_0_0_0_80_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"}.
// Istio's stats_matcher, which hides most cluster and listener stats unless a pod asks for them
// (proxyStatsMatcher), is left out: rig keeps every stat, which its own tools read.
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
