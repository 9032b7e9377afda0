// Where a sidecar sends what no service of its own covers (the virtualOutbound catch-all chain,
// the `allow_any` virtual host): BlackHoleCluster under REGISTRY_ONLY; under ALLOW_ANY the
// PassthroughCluster (the original destination), or the Sidecar's outboundTrafficPolicy.egressProxy
// cluster `outbound|<port>|<subset>|<host>` when it names one. As istiod's
// buildOutboundCatchAllNetworkFiltersOnly and buildCatchAllVirtualHost (GetDestinationCluster with
// no service: the host as written, the given port). MeshConfig's outboundTrafficPolicy has only a mode.
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { warnOnce } from '../../model/config-warnings.ts';
import { BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER, outboundClusterName } from './names.ts';

export function unknownDestinationCluster(push: PushContext, proxy: Proxy): string {
  if (push.outboundMode(proxy) === 'REGISTRY_ONLY') return BLACKHOLE_CLUSTER;
  const sidecar = push.sidecarFor(proxy);
  const egress = sidecar?.spec.outboundTrafficPolicy?.egressProxy;
  const port = egress?.port?.number;
  if (!egress || port === undefined) return PASSTHROUGH_CLUSTER;
  const visible = push.visibleServices(proxy).some((s) => s.hostname === egress.host && s.ports.some((p) => p.port === port));
  if (!visible) warnOnce('lds', `Sidecar ${sidecar!.metadata.namespace}/${sidecar!.metadata.name} outboundTrafficPolicy.egressProxy: no service ${egress.host} with port ${port} is visible to its workloads; unknown destinations fail (the cluster does not exist)`);
  return outboundClusterName(port, egress.subset ?? '', egress.host);
}
