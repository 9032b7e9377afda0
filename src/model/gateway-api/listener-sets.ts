// ListenerSets (gateway.networking.k8s.io/v1, Gateway API v1.5) as istiod reads them: the
// listeners of a ListenerSet join its parent Gateway's when the Gateway allows the ListenerSet's
// namespace (spec.allowedListeners, none by default), after the Gateway's own and in the Gateway
// API's precedence (oldest ListenerSet first, then namespace/name). A listener that clashes with
// one before it (same port: TCP with anything, or HTTP-like listeners with the same hostname) is
// refused with HostnameConflict or ProtocolConflict (istiod's ComputeGatewayListenerConflicts).
import type { GatewayApi, Resource } from '../../api/index.ts';
import { GATEWAY_API_GROUP } from '../../api/index.ts';
import type { StatusReport } from './status.ts';

export type ListenerSet = Resource<GatewayApi.ListenerSetSpec>;

export interface AttachedListenerSet {
  set: ListenerSet;
  /** Index of a listener → the reason it is refused (HostnameConflict, ProtocolConflict). */
  conflicts: Map<number, string>;
}

/** `namespace/name` of the Gateway a ListenerSet names; undefined when its parentRef is not a Gateway API Gateway. */
export function parentGatewayKey(set: ListenerSet): string | undefined {
  const p = set.spec.parentRef;
  if ((p.group ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP || (p.kind ?? 'Gateway') !== 'Gateway') return undefined;
  return `${p.namespace ?? set.metadata.namespace}/${p.name}`;
}

/**
 * The ListenerSets a Gateway takes, in precedence order, with their conflicting listeners; those
 * of a namespace the Gateway does not allow are reported (Accepted=False, NotAllowed) and left out.
 */
export function attachedListenerSets(gw: Resource<GatewayApi.KubernetesGatewaySpec>, sets: readonly ListenerSet[], allows: (ns: string) => boolean, status: StatusReport): AttachedListenerSet[] {
  const allowed = sets.filter((s) => {
    if (allows(s.metadata.namespace)) return true;
    const from = gw.spec.allowedListeners?.namespaces?.from ?? 'None';
    status.condition(s, 'Accepted', 'NotAllowed', ['spec', 'parentRef'], `Gateway ${gw.metadata.namespace}/${gw.metadata.name} does not allow ListenerSets from namespace ${s.metadata.namespace} (allowedListeners.namespaces.from: ${from})`, 'the Gateway owner allows it in spec.allowedListeners (from: Same, All or a Selector over Namespace labels)');
    return false;
  });
  const ordered = [...allowed].sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  const accepted: { listener: GatewayApi.Listener; owner: string }[] = gw.spec.listeners.map((listener) => ({ listener, owner: `Gateway ${gw.metadata.namespace}/${gw.metadata.name}` }));
  return ordered.map((set) => {
    const conflicts = new Map<number, string>();
    set.spec.listeners.forEach((l, i) => {
      const prior = accepted.find((a) => !distinct(l, a.listener));
      if (!prior) {
        accepted.push({ listener: l, owner: `ListenerSet ${set.metadata.namespace}/${set.metadata.name}` });
        return;
      }
      const reason = bothL4(l, prior.listener) || l.protocol !== prior.listener.protocol ? 'ProtocolConflict' : 'HostnameConflict';
      conflicts.set(i, reason);
      status.condition(set, 'Accepted', reason, ['spec', 'listeners', i], `listener ${l.name} conflicts with listener ${prior.listener.name} of ${prior.owner} (port ${l.port}, ${prior.listener.protocol}, hostname ${prior.listener.hostname ?? '*'})`, 'change its port or hostname: the earlier listener keeps it');
    });
    return { set, conflicts };
  });
}

const L4 = new Set(['TCP', 'UDP']);
const HTTP_LIKE = new Set(['HTTP', 'HTTPS', 'TLS']);

function bothL4(a: GatewayApi.Listener, b: GatewayApi.Listener): boolean {
  return L4.has(a.protocol) && L4.has(b.protocol);
}

/** Whether two listeners can share a Gateway (istiod's listenersDistinct). */
function distinct(a: GatewayApi.Listener, b: GatewayApi.Listener): boolean {
  if (a.port !== b.port) return true;
  if ((L4.has(a.protocol) && HTTP_LIKE.has(b.protocol)) || (HTTP_LIKE.has(a.protocol) && L4.has(b.protocol)) || bothL4(a, b)) return false;
  if (HTTP_LIKE.has(a.protocol) && HTTP_LIKE.has(b.protocol)) return (a.hostname || '*') !== (b.hostname || '*');
  return a.protocol !== b.protocol;
}
