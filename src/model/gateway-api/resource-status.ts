// The status Istio writes on Gateway API resources, computed for the control plane's debug API
// (`/debug/configz`, which `rig get` reads): conditions from the translation's diagnostics, and for
// a Gateway, Programmed and its addresses from the gateway proxies connected to the control plane.
import type { DestinationRuleSpec, Diagnostic, GatewayApi, GatewaySpec, Resource, VirtualServiceSpec } from '../../api/index.ts';
import { describeResource, GATEWAY_API_GROUP, GATEWAY_NAME_LABEL } from '../../api/index.ts';
import { REMOTE_GATEWAY_CLASS } from '../network.ts';
import type { Proxy } from '../proxy.ts';
import { insecureFrontendValidation } from './gateway-tls.ts';
import { supportedKinds } from './gateways.ts';
import { parentGatewayKey, type ListenerSet } from './listener-sets.ts';
import { PARENTS_ANNOTATION } from './routes.ts';
import { GATEWAY_API_CODES } from './status.ts';

export const ISTIO_CONTROLLER = 'istio.io/gateway-controller';
/** The controller istiod names in a policy's status for its mesh (Service) ancestors. */
const MESH_CONTROLLER = 'istio.io/mesh-controller';
const ISTIO_CLASS = 'istio';

export interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

const ROUTE_KINDS: ReadonlySet<string> = new Set(['HTTPRoute', 'GRPCRoute', 'TCPRoute', 'TLSRoute']);

/** What the translation generated (the push context's gateways, virtual services and destination rules): a listener's attached routes, a policy's Gateways. */
export interface Generated {
  gateways: readonly Resource<GatewaySpec>[];
  virtualServices: readonly Resource<VirtualServiceSpec>[];
  destinationRules?: readonly Resource<DestinationRuleSpec>[];
}

/**
 * The Gateways routing to the hosts of each BackendTLSPolicy (`namespace/name` of the policy →
 * Gateway names, sorted), as istiod adds them to the policy's ancestors: the hosts of the
 * DestinationRules the policy became, the Gateways whose generated routes send there.
 */
function policyGateways(generated: Generated): Map<string, string[]> {
  const gatewayOf = new Map<string, string>();
  for (const g of generated.gateways) {
    const m = /^Gateway\/([^/]+)\/.+\.([^.]+)$/.exec(g.metadata.annotations?.[PARENTS_ANNOTATION] ?? '');
    if (m) gatewayOf.set(`${g.metadata.namespace}/${g.metadata.name}`, `${m[2]}/${m[1]}`);
  }
  const byHost = new Map<string, Set<string>>();
  for (const vs of generated.virtualServices) {
    const gateways = (vs.spec.gateways ?? []).map((g) => gatewayOf.get(g)).filter((g): g is string => !!g);
    if (!gateways.length) continue;
    const routes = [...(vs.spec.http ?? []), ...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])].flatMap((r) => r.route ?? []);
    for (const host of new Set(routes.map((d) => d.destination.host))) byHost.set(host, new Set([...(byHost.get(host) ?? []), ...gateways]));
  }
  const out = new Map<string, string[]>();
  for (const dr of generated.destinationRules ?? []) {
    for (const parent of dr.metadata.annotations?.[PARENTS_ANNOTATION]?.split(',') ?? []) {
      const m = /^BackendTLSPolicy\/([^.]+)\.(.+)$/.exec(parent);
      if (m) out.set(`${m[1]}/${m[2]}`, [...new Set([...(out.get(`${m[1]}/${m[2]}`) ?? []), ...(byHost.get(dr.spec.host) ?? [])])].sort());
    }
  }
  return out;
}

/** A listener (a Gateway's or a ListenerSet's) refused because an earlier listener of the Gateway holds its port. */
const CONFLICT_REASONS: ReadonlySet<string> = new Set(['HostnameConflict', 'ProtocolConflict']);

/**
 * The routes attached to each listener, keyed `<Gateway|ListenerSet>/<namespace>/<name>/<listener>`: the
 * routes named by the generated VirtualServices bound to the Istio Gateway generated for that listener.
 */
function attachedRoutes(generated: Generated): Map<string, number> {
  const listenerOf = new Map<string, string>();
  for (const g of generated.gateways) {
    const m = /^(Gateway|ListenerSet)\/([^/]+)\/(.+)\.([^.]+)$/.exec(g.metadata.annotations?.[PARENTS_ANNOTATION] ?? '');
    if (m) listenerOf.set(`${g.metadata.namespace}/${g.metadata.name}`, `${m[1]}/${m[4]}/${m[2]}/${m[3]}`);
  }
  const routes = new Map<string, Set<string>>();
  for (const vs of generated.virtualServices) {
    const parents = vs.metadata.annotations?.[PARENTS_ANNOTATION];
    if (!parents) continue;
    for (const gw of vs.spec.gateways ?? []) {
      const listener = listenerOf.get(gw);
      if (!listener) continue;
      let set = routes.get(listener);
      if (!set) routes.set(listener, (set = new Set()));
      for (const r of parents.split(',')) set.add(r);
    }
  }
  return new Map([...routes].map(([k, v]) => [k, v.size]));
}

/** The `status` of each Gateway API resource, by describeResource(). */
export function gatewayApiResourceStatus(resources: readonly Resource[], diagnostics: readonly Diagnostic[], proxies: readonly Proxy[], generated?: Generated): Map<string, unknown> {
  const attached = generated ? attachedRoutes(generated) : new Map<string, number>();
  const gatewaysOfPolicy = generated ? policyGateways(generated) : new Map<string, string[]>();
  const failed = new Map<string, Map<string, { reason: string; message: string }>>();
  for (const d of diagnostics) {
    if (d.code !== GATEWAY_API_CODES.condition || !d.resource) continue;
    const m = /^(Accepted|ResolvedRefs|Programmed)=False \(([^)]*)\): (.*)$/.exec(d.message);
    if (!m) continue;
    // A route is accepted or not per parent (its status has one entry per parentRef).
    const parent = /^spec\.(?:parentRefs|listeners|targetRefs)\[(\d+)\]/.exec(d.path ?? '')?.[1];
    const key = parent === undefined ? d.resource : `${d.resource}#${parent}`;
    let byType = failed.get(key);
    if (!byType) failed.set(key, (byType = new Map()));
    if (!byType.has(m[1])) byType.set(m[1], { reason: m[2], message: m[3] });
  }
  const condition = (key: string, type: string, okReason: string, okMessage: string): Condition => {
    const f = failed.get(key)?.get(type);
    return f ? { type, status: 'False', reason: f.reason, message: f.message } : { type, status: 'True', reason: okReason, message: okMessage };
  };
  /** A listener's status: its conditions, the kinds it takes, its attached routes. A listener refused for a conflict is Conflicted. */
  const listenerStatus = (key: string, l: GatewayApi.Listener, i: number, attachedKey: string) => {
    const refused = failed.get(`${key}#${i}`)?.get('Accepted');
    const allowed = l.allowedRoutes?.kinds?.map((k) => k.kind);
    const kinds = supportedKinds(l).filter((k) => !allowed || allowed.includes(k));
    const base = { name: l.name, attachedRoutes: attached.get(attachedKey) ?? 0, supportedKinds: kinds.map((kind) => ({ group: GATEWAY_API_GROUP, kind })) };
    if (refused && CONFLICT_REASONS.has(refused.reason)) {
      const no = (type: string): Condition => ({ type, status: 'False', reason: refused.reason, message: refused.message });
      const conflicted: Condition = { type: 'Conflicted', status: 'True', reason: refused.reason, message: refused.message };
      return { ...base, conditions: [no('Accepted'), conflicted, no('Programmed')] };
    }
    const accepted = condition(`${key}#${i}`, 'Accepted', 'Accepted', 'No errors found');
    const resolved = condition(`${key}#${i}`, 'ResolvedRefs', 'ResolvedRefs', 'No errors found');
    const programmed: Condition = accepted.status === 'True' && resolved.status === 'True' ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'No errors found' } : { type: 'Programmed', status: 'False', reason: 'Invalid', message: 'the listener is not accepted or its references do not resolve' };
    // istiod's order (by type) and its Conflicted=False on every listener that kept its port.
    const conditions: Condition[] = [accepted, { type: 'Conflicted', status: 'False', reason: 'NoConflicts', message: 'No errors found' }, programmed, resolved];
    return { ...base, conditions };
  };
  const proxiesOf = (ns: string, gateway: string) => proxies.filter((p) => p.type === 'router' && p.namespace === ns && p.labels[GATEWAY_NAME_LABEL] === gateway);
  const listenerSets = listenerSetStatuses(resources, failed, listenerStatus, proxiesOf);
  const out = new Map<string, unknown>();
  for (const r of resources) {
    const key = describeResource(r);
    if (r.kind === 'KubernetesGateway') {
      const spec = r.spec as unknown as GatewayApi.KubernetesGatewaySpec;
      if (spec.gatewayClassName === REMOTE_GATEWAY_CLASS) {
        // istiod's reportUnmanagedGatewayStatus: valid by declaration, its addresses echoed, no listeners.
        const conditions: Condition[] = [
          { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Resource accepted' },
          { type: 'Programmed', status: 'True', reason: 'Programmed', message: 'This Gateway is remote; Istio will not program it' },
        ];
        out.set(key, { addresses: (spec.addresses ?? []).map((a) => ({ type: a.type ?? 'IPAddress', value: a.value })), conditions });
        continue;
      }
      if (spec.gatewayClassName !== ISTIO_CLASS) continue;
      const listeners = (spec.listeners ?? []).map((l, i) => listenerStatus(key, l, i, `Gateway/${r.metadata.namespace}/${r.metadata.name}/${l.name}`));
      // The Gateway API's rule: a Gateway with some invalid listeners is still accepted, saying so.
      const invalidListeners = listeners.filter((l) => !listenerValid(l.conditions)).map((l) => l.name);
      const accepted: Condition = failed.get(key)?.has('Accepted') || !invalidListeners.length ? condition(key, 'Accepted', 'Accepted', 'Resource accepted') : { type: 'Accepted', status: 'True', reason: 'ListenersNotValid', message: `invalid listeners: ${invalidListeners.join(', ')}` };
      const gateways = proxiesOf(r.metadata.namespace, r.metadata.name);
      const addresses = [...new Set(gateways.map((p) => p.explicit?.bind ?? p.ipAddresses[0]).filter((a): a is string => !!a))];
      const programmed: Condition =
        accepted.status === 'False'
          ? { type: 'Programmed', status: 'False', reason: 'Invalid', message: 'the Gateway is not accepted' }
          : addresses.length
            ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: `Resource programmed, served by ${gateways.map((p) => p.name).join(', ')}` }
            : { type: 'Programmed', status: 'False', reason: 'AddressNotAssigned', message: `no gateway proxy labelled ${GATEWAY_NAME_LABEL}=${r.metadata.name} in ${r.metadata.namespace} is connected (rig up runs ${r.metadata.name}-${ISTIO_CLASS})` };
      // Newer istiod reports these two on every Gateway: its references (backend.clientCertificateRef) and GEP-91's fallback mode.
      const insecure = insecureFrontendValidation(spec);
      const insecureMode: Condition = insecure
        ? { type: 'InsecureFrontendValidationMode', status: 'True', reason: 'ConfigurationChanged', message: 'AllowInsecureFallback mode is enabled for frontend validation' }
        : { type: 'InsecureFrontendValidationMode', status: 'False', reason: '', message: 'AllowInsecureFallback mode is disabled for frontend validation' };
      const resolved = condition(key, 'ResolvedRefs', 'ResolvedRefs', 'All references resolved');
      out.set(key, { addresses: addresses.map((value) => ({ type: 'IPAddress', value })), conditions: [accepted, insecureMode, programmed, resolved], listeners });
      if (spec.allowedListeners) {
        // Gateway API v1.5: how many ListenerSets attached (accepted), as a condition and a count.
        const n = [...listenerSets.values()].filter((s) => s.parent === `${r.metadata.namespace}/${r.metadata.name}` && s.status.conditions[0].status === 'True').length;
        const st = out.get(key) as { conditions: Condition[]; attachedListenerSets?: number };
        st.conditions.push(n ? { type: 'AttachedListenerSets', status: 'True', reason: 'ListenerSetsAttached', message: `${n} ListenerSet(s) attached` } : { type: 'AttachedListenerSets', status: 'False', reason: 'NoListenerSetsAttached', message: 'allowedListeners is set, but no ListenerSet is attached' });
        st.attachedListenerSets = n;
      }
    } else if (r.kind === 'ListenerSet') {
      const s = listenerSets.get(key);
      if (s) out.set(key, s.status);
    } else if (ROUTE_KINDS.has(r.kind)) {
      const spec = r.spec as { parentRefs?: GatewayApi.ParentReference[] };
      const resolved = condition(key, 'ResolvedRefs', 'ResolvedRefs', 'All references resolved');
      const parents = (spec.parentRefs ?? []).map((parentRef, i) => {
        const own = condition(`${key}#${i}`, 'Accepted', 'Accepted', 'Route was valid');
        return { parentRef, controllerName: ISTIO_CONTROLLER, conditions: [own.status === 'False' ? own : condition(key, 'Accepted', 'Accepted', 'Route was valid'), resolved] };
      });
      out.set(key, { parents });
    } else if (r.kind === 'BackendTLSPolicy') {
      // One ancestor per targetRef, the Service (for the mesh), as istiod reports them.
      const spec = r.spec as unknown as GatewayApi.BackendTLSPolicySpec;
      const conditionsOf = (i: number) =>
        (['Accepted', 'ResolvedRefs'] as const).map((type) => {
          const c = condition(`${key}#${i}`, type, type, 'Configuration is valid');
          return c.status === 'False' ? c : condition(key, type, type, 'Configuration is valid');
        });
      const ancestors = spec.targetRefs.map((t, i) => {
        const ancestorRef = { group: t.group, kind: t.kind, name: t.name, ...(t.sectionName ? { sectionName: t.sectionName } : {}) };
        return { ancestorRef, controllerName: MESH_CONTROLLER, conditions: conditionsOf(i) };
      });
      // Then each Gateway routing there, with the last target's conditions (as istiod); at most 16 ancestors in all.
      for (const g of gatewaysOfPolicy.get(`${r.metadata.namespace}/${r.metadata.name}`) ?? []) {
        ancestors.push({ ancestorRef: { group: GATEWAY_API_GROUP, kind: 'Gateway', name: g.slice(g.indexOf('/') + 1) }, controllerName: ISTIO_CONTROLLER, conditions: conditionsOf(spec.targetRefs.length - 1) });
      }
      out.set(key, { ancestors: ancestors.slice(0, 16) });
    } else if (r.kind === 'GatewayClass') {
      const spec = r.spec as unknown as GatewayApi.GatewayClassSpec;
      if (spec.controllerName === ISTIO_CONTROLLER) out.set(key, { conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Handled by Istio controller' }] });
    }
  }
  return out;
}

/** A listener is valid when it is not Conflicted and its other conditions are True. */
function listenerValid(conditions: readonly Condition[]): boolean {
  return conditions.every((c) => (c.type === 'Conflicted' ? c.status === 'False' : c.status === 'True'));
}

type ListenerStatusOf = (key: string, l: GatewayApi.Listener, i: number, attachedKey: string) => { conditions: Condition[] };

/**
 * The status of each ListenerSet whose parent is a Gateway of class istio, by describeResource(), with
 * that parent's `namespace/name`: refused (NotAllowed) with no listeners, else accepted when one of
 * its listeners is valid (ListenersNotValid otherwise) and programmed when the parent's proxies are
 * connected, as istiod's ReportListenerSetStatus.
 */
function listenerSetStatuses(resources: readonly Resource[], failed: Map<string, Map<string, { reason: string; message: string }>>, listenerStatus: ListenerStatusOf, proxiesOf: (ns: string, gateway: string) => Proxy[]) {
  const out = new Map<string, { parent: string; status: { conditions: Condition[]; listeners: unknown[] } }>();
  for (const r of resources) {
    if (r.kind !== 'ListenerSet') continue;
    const set = r as unknown as ListenerSet;
    const parent = parentGatewayKey(set);
    const gw = resources.find((g) => g.kind === 'KubernetesGateway' && `${g.metadata.namespace}/${g.metadata.name}` === parent);
    if (!parent || (gw?.spec as unknown as GatewayApi.KubernetesGatewaySpec | undefined)?.gatewayClassName !== ISTIO_CLASS) continue;
    const key = describeResource(r);
    const refused = failed.get(key)?.get('Accepted');
    if (refused?.reason === 'NotAllowed') {
      const no = (type: string): Condition => ({ type, status: 'False', reason: 'NotAllowed', message: refused.message });
      out.set(key, { parent, status: { conditions: [no('Accepted'), no('Programmed')], listeners: [] } });
      continue;
    }
    const listeners = set.spec.listeners.map((l, i) => listenerStatus(key, l, i, `ListenerSet/${set.metadata.namespace}/${set.metadata.name}/${l.name}`));
    const valid = listeners.some((l) => listenerValid(l.conditions));
    const [ns, name] = parent.split('/');
    const serving = proxiesOf(ns, name);
    const accepted: Condition = valid ? { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Resource accepted' } : { type: 'Accepted', status: 'False', reason: 'ListenersNotValid', message: "None of the ListenerSet's listeners are valid" };
    const programmed: Condition = !valid
      ? { ...accepted, type: 'Programmed' }
      : serving.length
        ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: `Resource programmed, served by ${serving.map((p) => p.name).join(', ')}` }
        : { type: 'Programmed', status: 'False', reason: 'AddressNotAssigned', message: `no gateway proxy of Gateway ${parent} is connected` };
    out.set(key, { parent, status: { conditions: [accepted, programmed], listeners } });
  }
  return out;
}

/** Istio's built-in GatewayClass `istio`, listed when the configuration does not declare it. */
export const BUILT_IN_GATEWAY_CLASS = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'GatewayClass',
  metadata: { name: ISTIO_CLASS },
  spec: { controllerName: ISTIO_CONTROLLER, description: 'The default Istio GatewayClass' },
  status: { conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Handled by Istio controller' }] },
};
