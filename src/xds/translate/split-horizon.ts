// Split-horizon EDS, as istiod's EndpointsByNetworkFilter (pilot/pkg/xds/endpoints/ep_filters.go):
// once some network has a gateway, a proxy gets the endpoints of its own network (and of networks
// without a gateway, which istiod takes as directly reachable) as they are; the endpoints of a
// network with gateways are replaced, per locality, by those gateways, each weighted with its
// share of the endpoints' weights. All weights are scaled by the LCM of the gateway counts so the
// shares stay whole. Cross-network traffic is routed by the gateway on the Istio mTLS SNI, so an
// endpoint the client would not reach with ISTIO_MUTUAL is dropped (the reason is logged and
// listed on /debug/networkz).
import { warnOnce } from '../../model/config-warnings.ts';
import { NETWORK_LABEL, sameNetwork, type NetworkGateway } from '../../model/network.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Endpoint } from '../../model/service.ts';

const MAX_WEIGHT = 2 ** 32 - 1;

/** Why endpoints were left out of split-horizon assignments in this push (for /debug/networkz). */
export function networkDrops(push: PushContext): Map<string, string> {
  return push.memo('network-drops', () => new Map<string, string>());
}

/** What the assignment depends on: the proxy's network and REQUESTED_NETWORK_VIEW ('' without gateways). */
export function networkKey(push: PushContext, proxy: Pick<Proxy, 'network' | 'networkView'>): string {
  return push.networks.multiNetwork ? `${proxy.network}|${proxy.networkView.join(',')}` : '';
}

/**
 * The endpoints of `cluster` as `proxy` reaches them. `mtls`: whether the client originates Istio
 * mTLS to an endpoint (istiod's mtlsChecker: the DestinationRule's tls mode, else auto mTLS).
 */
export function splitHorizon(push: PushContext, proxy: Pick<Proxy, 'network' | 'networkView'>, cluster: string, endpoints: readonly Endpoint[], mtls: (e: Endpoint) => boolean): readonly Endpoint[] {
  const nets = push.networks;
  if (!nets.multiNetwork) return endpoints;
  const proxyNetwork = proxy.network;
  const scale = nets.scaleFactor;
  const out: Endpoint[] = [];
  const viaGateway = new Map<string, { template: Endpoint; weights: Map<NetworkGateway, number> }>();
  for (const e of endpoints) {
    const network = nets.networkOf(e);
    // istiod's ProxyView: a proxy asking for some networks sees only those (and endpoints of none).
    if (proxy.networkView.length && network !== '' && !proxy.networkView.includes(network)) continue;
    const weight = Math.min((e.weight || 1) * scale, MAX_WEIGHT);
    const gateways = nets.gatewaysFor(network);
    if (sameNetwork(proxyNetwork, network) || gateways.length === 0) {
      if (e.address) out.push(weight === e.weight ? e : { ...e, weight });
      continue;
    }
    if (!mtls(e)) {
      const reason = `endpoint ${e.address}:${e.port} of ${cluster} is in network ${network}, reached from network ${proxyNetwork} only through its gateway, which routes Istio mTLS by SNI, and traffic to it would not be ISTIO_MUTUAL: dropped (istiod does the same; use ISTIO_MUTUAL or auto mTLS with a sidecar on the endpoint)`;
      networkDrops(push).set(`${proxyNetwork}|${cluster}|${e.address}:${e.port}`, reason);
      warnOnce('eds', reason);
      continue;
    }
    let at = viaGateway.get(e.locality);
    if (!at) viaGateway.set(e.locality, (at = { template: e, weights: new Map() }));
    const share = Math.floor(weight / gateways.length);
    for (const g of gateways) at.weights.set(g, (at.weights.get(g) ?? 0) + share);
  }
  for (const [locality, { template, weights }] of viaGateway) {
    for (const g of nets.gateways) {
      const w = weights.get(g);
      if (w !== undefined) out.push(gatewayEndpoint(g, template, locality, w || 1));
    }
  }
  return out;
}

function gatewayEndpoint(g: NetworkGateway, e: Endpoint, locality: string, weight: number): Endpoint {
  return {
    address: g.address,
    port: g.port,
    workloadPort: g.port,
    servicePort: e.servicePort,
    hostname: e.hostname,
    labels: { [NETWORK_LABEL]: g.network },
    namespace: '',
    serviceAccount: '',
    workloadName: '',
    tlsMode: 'istio',
    locality,
    weight,
    healthy: true,
    network: g.network,
    networkGateway: true,
  };
}
