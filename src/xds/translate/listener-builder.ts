// LDS entry point: picks the listener set for the proxy's kind (router, explicit sidecar,
// REDIRECT sidecar, proxyless gRPC).
import { HCM_TYPE, ROUTER_TYPE } from '../../envoy/index.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { gatewayListeners } from './listener-gateway.ts';
import { explicitListeners, redirectListeners } from './listener-sidecar.ts';
import { withTcpProxyPolicy } from './tcp-proxy-policy.ts';
import { withWasmNetworkPlugins } from './wasm-plugins.ts';
import { withListenerAccessLogs } from '../telemetry/index.ts';

export function buildListeners(push: PushContext, proxy: Proxy, names?: readonly string[]): EnvoyJson[] {
  if (proxy.generator === 'grpc') return grpcListeners(push, proxy, names);
  const listeners = proxy.type === 'router' ? gatewayListeners(push, proxy) : proxy.explicit ? explicitListeners(push, proxy) : redirectListeners(push, proxy);
  return withListenerAccessLogs(push, proxy, withWasmNetworkPlugins(push, proxy, withTcpProxyPolicy(push, proxy, listeners)));
}

/** Resolves `host:port` as a proxyless client names it (FQDN, `name.ns`, or short name in its namespace). */
export function resolveGrpcTarget(push: PushContext, proxy: Proxy, name: string): [Service, ServicePort] | undefined {
  const i = name.lastIndexOf(':');
  if (i <= 0) return undefined;
  const host = name.slice(0, i);
  const port = Number(name.slice(i + 1));
  for (const h of [host, `${host}.${proxy.namespace}.svc.cluster.local`, `${host}.svc.cluster.local`]) {
    const svc = push.serviceByHost.get(h);
    const sp = svc?.ports.find((p) => p.port === port);
    if (svc && sp && push.visibleServices(proxy).includes(svc)) return [svc, sp];
  }
  return undefined;
}

/** Proxyless gRPC (Istio's grpc generator): an API listener named `host:port` per target, RDS `<fqdn>:<port>`. */
function grpcListeners(push: PushContext, proxy: Proxy, names?: readonly string[]): EnvoyJson[] {
  const targets: [string, Service, ServicePort][] = [];
  if (names?.length) {
    for (const n of names) {
      const r = resolveGrpcTarget(push, proxy, n);
      if (r) targets.push([n, ...r]);
    }
  } else {
    for (const svc of push.visibleServices(proxy)) for (const sp of svc.ports) targets.push([`${svc.hostname}:${sp.port}`, svc, sp]);
  }
  return targets.map(([name, svc, sp]) => ({
    name,
    api_listener: {
      api_listener: {
        '@type': HCM_TYPE,
        stat_prefix: name,
        rds: { route_config_name: `${svc.hostname}:${sp.port}`, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
      },
    },
  }));
}
