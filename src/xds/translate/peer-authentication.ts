// PeerAuthentication with Istio's precedence. The mode of a workload port starts from the mesh
// policy (root namespace, no selector), is overridden by the namespace policy, then by the workload
// policy (selector) and finally by that policy's portLevelMtls entry for the port; UNSET (or an
// absent mode) at any level inherits the level above; with no policy at all the mode is PERMISSIVE.
// When several policies compete at one level, the oldest wins (creationTimestamp, then name), as in
// Istio. The same computation gives auto mTLS its answer for a server endpoint (EDS marks an endpoint
// whose port is DISABLE as plaintext, so clients do not originate mTLS to it).
import type { MutualTLSMode, PeerAuthenticationSpec, Resource } from '../../api/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import { selectorMatches } from '../../model/service.ts';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

type Policy = Resource<PeerAuthenticationSpec>;

function set(m: MutualTLSMode | undefined): MtlsMode | undefined {
  return m && m !== 'UNSET' ? m : undefined;
}

function olderFirst(a: Policy, b: Policy): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

function hasSelector(pa: Policy): boolean {
  return Object.keys(pa.spec.selector?.matchLabels ?? {}).length > 0;
}

/** Policies of a namespace, oldest first, split into namespace-wide and workload-selecting; computed once per push. */
function policiesOf(push: PushContext, namespace: string): { wide: Policy | undefined; selecting: Policy[] } {
  return push.memo(`peer-authn|${namespace}`, () => {
    const inNs = push.peerAuthentications.filter((pa) => pa.metadata.namespace === namespace).sort(olderFirst);
    return { wide: inNs.find((pa) => !hasSelector(pa)), selecting: inNs.filter(hasSelector) };
  });
}

/** The mTLS mode a workload (namespace + labels) enforces on inbound traffic to a workload port (0: no particular port). */
export function workloadMtlsMode(push: PushContext, namespace: string, labels: Record<string, string>, workloadPort: number): MtlsMode {
  const own = policiesOf(push, namespace);
  const workload = own.selecting.find((pa) => selectorMatches(pa.spec.selector!.matchLabels!, labels));
  const mesh = policiesOf(push, push.mesh.rootNamespace).wide;
  return (
    set(workload?.spec.portLevelMtls?.[String(workloadPort)]?.mode) ??
    set(workload?.spec.mtls?.mode) ??
    set(own.wide?.spec.mtls?.mode) ??
    set(mesh?.spec.mtls?.mode) ??
    'PERMISSIVE'
  );
}

/** The mTLS mode of a sidecar's inbound traffic on a workload port. */
export function inboundMtlsMode(push: PushContext, proxy: Proxy, workloadPort: number): MtlsMode {
  return workloadMtlsMode(push, proxy.namespace, proxy.labels, workloadPort);
}
