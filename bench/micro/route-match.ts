// Micro-benchmark of the proxy's per-request routing work (not part of the tests):
//   node bench/micro/route-match.ts
// On an Istio-sized outbound route table (100 services, each a virtual host with the domains
// Istio generates and a header-matched route before the default one): virtual host lookup by
// authority, route match, request header ops, and status-code stats. Prints ns/op (mitata).
import { bench, do_not_optimize, run, summary } from 'mitata';
import { compileRouteConfig, matchRoute } from '../../src/proxy/routing/route-config.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { Stats, StatusCounters } from '../../src/proxy/stats/stats.ts';
import { newStreamInfo } from '../../src/proxy/stream-info.ts';
import type { HeaderMap, RequestHead } from '../../src/proxy/filters/filter.ts';

const SERVICES = 100;
const svc = (i: number) => `svc${i}`;

function virtualHost(i: number): Record<string, unknown> {
  const fqdn = `${svc(i)}.default.svc.cluster.local`;
  const vip = `10.96.${i >> 8}.${i & 255}`;
  return {
    name: `${fqdn}:9080`,
    domains: [`${fqdn}:9080`, `${svc(i)}:9080`, `${svc(i)}.default:9080`, `${svc(i)}.default.svc:9080`, `${vip}:9080`],
    routes: [
      {
        name: 'jason',
        match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
        route: { cluster: `outbound|9080|v2|${fqdn}` },
      },
      {
        name: 'default',
        match: { prefix: '/' },
        route: { cluster: `outbound|9080||${fqdn}`, timeout: '0s', retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: 2 } },
        request_headers_to_add: [{ header: { key: 'x-envoy-peer-metadata-id', value: 'sidecar~10.0.0.1~client.default~default.svc.cluster.local' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        request_headers_to_remove: ['x-internal'],
      },
    ],
  };
}

const issues = new Issues();
const table = compileRouteConfig({ name: '9080', virtual_hosts: Array.from({ length: SERVICES }, (_, i) => virtualHost(i)) }, 'route_config', issues);
if (issues.errors.length) throw new Error(`route config did not compile:\n${issues.errors.join('\n')}`);

const authorities = Array.from({ length: SERVICES }, (_, i) => `${svc(i)}:9080`);
const heads: RequestHead[] = authorities.map((authority) => ({
  method: 'GET',
  path: '/productpage?u=normal',
  authority,
  scheme: 'http',
  headers: { 'user-agent': 'curl/8.5.0', accept: '*/*', 'x-request-id': '6f1a1f7e-4c1b-4d8a-9e3c-0e1f2a3b4c5d' },
}));
const vhost0 = table.findVirtualHost(authorities[42])!;
const route = matchRoute(vhost0, heads[42], false)!;
const info = newStreamInfo('outbound', 'HTTP/1.1');
const stats = new Stats();
const status = new StatusCounters(stats, 'cluster.outbound|9080||svc42.default.svc.cluster.local.upstream_rq_');

let k = 0;
summary(() => {
  bench('findVirtualHost (100 vhosts, cached authority)', () => do_not_optimize(table.findVirtualHost(authorities[k++ % SERVICES])));
  bench('matchRoute (header route misses, prefix route hits)', () => do_not_optimize(matchRoute(vhost0, heads[k++ % SERVICES], false)));
  bench('findVirtualHost + matchRoute', () => {
    const h = heads[k++ % SERVICES];
    do_not_optimize(matchRoute(table.findVirtualHost(h.authority)!, h, false));
  });
  bench('route requestOps.apply (1 remove, 1 overwrite)', () => {
    const headers: HeaderMap = { 'user-agent': 'curl/8.5.0', accept: '*/*', 'x-internal': '1' };
    route.requestOps.apply(headers, info, heads[42]);
    do_not_optimize(headers);
  });
  bench('StatusCounters.record(200)', () => status.record(200));
});

await run({ colors: process.stdout.isTTY });
