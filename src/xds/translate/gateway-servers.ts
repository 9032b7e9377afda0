// Which Gateways configure a router proxy, and the hosts a server exposes to a VirtualService.
import type { Resource } from '../../api/index.ts';
import type { GatewaySpec, Server } from '../../api/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { selectorMatches } from '../../model/service.ts';
import { GATEWAY_PARENT_NAMESPACE_ANNOTATION, GATEWAY_SEMANTICS_ANNOTATION } from '../../model/gateway-api/index.ts';

/**
 * Gateways whose selector matches the proxy's labels: in any namespace, as Istio does by default,
 * except those generated from a Gateway API Gateway, which program the gateway deployed in their
 * own namespace only (a ListenerSet's: its parent Gateway's namespace).
 */
export function gatewaysFor(push: PushContext, proxy: Proxy): Resource<GatewaySpec>[] {
  return push.memo(`gws|${JSON.stringify(proxy.labels)}|${proxy.namespace}`, () =>
    push.gateways.filter((g) => selectorMatches(g.spec.selector, proxy.labels) && (g.metadata.annotations?.[GATEWAY_SEMANTICS_ANNOTATION] !== 'gateway' || (g.metadata.annotations[GATEWAY_PARENT_NAMESPACE_ANNOTATION] ?? g.metadata.namespace) === proxy.namespace)),
  );
}

/** The server's hosts visible to a VirtualService in `vsNamespace` (`ns/host`, `./host`, `*\/host`, `host`). */
export function serverHosts(server: Server, vsNamespace: string, gatewayNamespace: string): string[] {
  const out: string[] = [];
  for (const h of server.hosts ?? []) {
    const slash = h.indexOf('/');
    if (slash < 0) {
      out.push(h);
      continue;
    }
    const ns = h.slice(0, slash);
    if (ns === '*' || ns === vsNamespace || (ns === '.' && vsNamespace === gatewayNamespace)) out.push(h.slice(slash + 1));
  }
  return out;
}

/** A server's hosts without namespace prefixes, for SNI matching. */
export function plainServerHosts(server: Server): string[] {
  return (server.hosts ?? []).map((h) => h.slice(h.indexOf('/') + 1));
}

/** Whether a router serves some Gateway server in AUTO_PASSTHROUGH (istiod's ContainsAutoPassthroughGateways). */
export function hasAutoPassthroughServer(push: PushContext, proxy: Proxy): boolean {
  return gatewaysFor(push, proxy).some((g) => g.spec.servers?.some((s) => s.tls?.mode === 'AUTO_PASSTHROUGH'));
}
