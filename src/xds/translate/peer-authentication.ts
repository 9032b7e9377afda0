// PeerAuthentication with Istio's precedence: workload policy (selector; portLevelMtls first),
// then the namespace policy, then the mesh policy in the root namespace; UNSET inherits; the
// default is PERMISSIVE.
import type { MutualTLSMode } from '../../api/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { selectorMatches } from '../../model/service.ts';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

function set(m: MutualTLSMode | undefined): MtlsMode | undefined {
  return m && m !== 'UNSET' ? m : undefined;
}

/** The mTLS mode of a sidecar's inbound traffic on a workload port. */
export function inboundMtlsMode(push: PushContext, proxy: Proxy, workloadPort: number): MtlsMode {
  const pas = push.peerAuthentications;
  const workload = pas.find((pa) => pa.metadata.namespace === proxy.namespace && pa.spec.selector?.matchLabels && selectorMatches(pa.spec.selector.matchLabels, proxy.labels));
  const namespace = pas.find((pa) => pa.metadata.namespace === proxy.namespace && !pa.spec.selector?.matchLabels);
  const mesh = pas.find((pa) => pa.metadata.namespace === push.mesh.rootNamespace && !pa.spec.selector?.matchLabels);
  return (
    set(workload?.spec.portLevelMtls?.[String(workloadPort)]?.mode) ??
    set(workload?.spec.mtls?.mode) ??
    set(namespace?.spec.mtls?.mode) ??
    set(mesh?.spec.mtls?.mode) ??
    'PERMISSIVE'
  );
}
