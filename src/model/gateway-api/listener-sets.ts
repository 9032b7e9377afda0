// ListenerSets (gateway.networking.k8s.io/v1, Gateway API v1.5) as istiod reads them: the
// listeners of a ListenerSet join its parent Gateway's when the Gateway allows the ListenerSet's
// namespace (spec.allowedListeners, none by default), after the Gateway's own and in the Gateway
// API's precedence (oldest ListenerSet first, then namespace/name). Across that merged list, a
// listener that clashes with an earlier one that won (same port: TCP with anything, or HTTP-like
// listeners with the same hostname) is refused with HostnameConflict or ProtocolConflict, be it the
// Gateway's own or a ListenerSet's (istiod's ComputeGatewayListenerConflicts).
import type { GatewayApi, Resource } from '../../api/index.ts';
import { GATEWAY_API_GROUP, writtenKind } from '../../api/index.ts';
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

export interface AttachedListeners {
  /** Index of a listener of the Gateway's own → the reason it is refused (HostnameConflict, ProtocolConflict). */
  own: Map<number, string>;
  sets: AttachedListenerSet[];
}

/**
 * The ListenerSets a Gateway takes, in precedence order, and the conflicting listeners of the
 * Gateway and of those sets; the sets of a namespace the Gateway does not allow are reported
 * (Accepted=False, NotAllowed) and left out, so they conflict with nothing.
 */
export function attachedListenerSets(gw: Resource<GatewayApi.KubernetesGatewaySpec>, sets: readonly ListenerSet[], allows: (ns: string) => boolean, status: StatusReport): AttachedListeners {
  const allowed = sets.filter((s) => {
    if (allows(s.metadata.namespace)) return true;
    const from = gw.spec.allowedListeners?.namespaces?.from ?? 'None';
    status.condition(s, 'Accepted', 'NotAllowed', ['spec', 'parentRef'], `Gateway ${gw.metadata.namespace}/${gw.metadata.name} does not allow ListenerSets from namespace ${s.metadata.namespace} (allowedListeners.namespaces.from: ${from})`, 'the Gateway owner allows it in spec.allowedListeners (from: Same, All or a Selector over Namespace labels)');
    return false;
  });
  const ordered = inPrecedence(allowed);
  const winners: { listener: GatewayApi.Listener; owner: string }[] = [];
  const conflictsOf = (owner: Resource<{ listeners: GatewayApi.Listener[] }>): Map<number, string> => {
    const conflicts = new Map<number, string>();
    const name = `${writtenKind(owner.kind)} ${owner.metadata.namespace}/${owner.metadata.name}`;
    owner.spec.listeners.forEach((l, i) => {
      const prior = winners.find((w) => !distinct(l, w.listener));
      if (!prior) {
        winners.push({ listener: l, owner: name });
        return;
      }
      const reason = bothL4(l, prior.listener) || l.protocol !== prior.listener.protocol ? 'ProtocolConflict' : 'HostnameConflict';
      conflicts.set(i, reason);
      status.condition(owner, 'Accepted', reason, ['spec', 'listeners', i], `listener ${l.name} conflicts with listener ${prior.listener.name} of ${prior.owner} (port ${l.port}, ${prior.listener.protocol}, hostname ${prior.listener.hostname ?? '*'})`, 'change its port or hostname: the earlier listener keeps it');
    });
    return conflicts;
  };
  const own = conflictsOf(gw);
  return { own, sets: ordered.map((set) => ({ set, conflicts: conflictsOf(set) })) };
}

/** The Gateway API's precedence among the ListenerSets of a Gateway: oldest first, then by namespace/name. */
export function inPrecedence(sets: readonly ListenerSet[]): ListenerSet[] {
  return [...sets].sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
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
