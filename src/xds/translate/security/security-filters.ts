// The security filters of a proxy's listeners: jwt_authn (authn stage) and the authorization
// filters (authz stage, Istio's order: CUSTOM (shadow RBAC + ext_authz) → AUDIT → DENY → ALLOW) of
// HTTP connection managers on inbound and gateway listeners, and network RBAC filters in front of
// tcp_proxy on inbound TCP chains.
import type { AuthorizationPolicySpec, RequestAuthenticationSpec } from '../../../api/index.ts';
import { HTTP_RBAC_TYPE, NETWORK_RBAC_TYPE } from '../../../envoy/index.ts';
import type { EnvoyJson } from '../../../envoy/index.ts';
import { createLogger, type Logger } from '../../../core/log.ts';
import type { PushContext } from '../../../model/push-context.ts';
import type { Proxy } from '../../../model/proxy.ts';
import type { HttpFilterContext, HttpFilterStage } from '../http-filters.ts';
import { buildCustomAuthz } from './authz-custom.ts';
import { buildRbac, type AuthzAction, type RbacOptions } from './authz-rbac.ts';
import { buildJwtAuthn } from './jwt-authn.ts';
import { policiesFor } from './security-scope.ts';
import { kubernetesGatewayLookup } from '../../../model/policy-attachment.ts';
import { missingGatewayTargets, waypointOnlyTargets, type AttachableSpec } from '../../../api/policy-targets.ts';
import { formatPath } from '../../../api/diagnostic.ts';

const ACTIONS: AuthzAction[] = ['AUDIT', 'DENY', 'ALLOW'];

let log: Logger | undefined;
const warned = new Set<string>();

/** Each dropped rule or field is logged once per control-plane process. */
function warn(notes: string[]): void {
  for (const n of notes) {
    if (warned.has(n) || warned.size > 10_000) continue;
    warned.add(n);
    (log ??= createLogger({ name: 'security' })).warn(n);
  }
}

/** Target references that attach a policy to no proxy (ambient-only kinds, Gateways that do not exist), once per snapshot. */
function targetRefNotes(push: PushContext): void {
  push.memo('security-targetref-notes', () => {
    const gatewayExists = kubernetesGatewayLookup(push.resources);
    for (const r of push.resources) {
      if (r.kind !== 'AuthorizationPolicy' && r.kind !== 'RequestAuthentication') continue;
      const spec = (r.spec ?? {}) as AttachableSpec;
      const notes = [...waypointOnlyTargets(r.kind, spec), ...missingGatewayTargets(r.kind, r.metadata.namespace, spec, gatewayExists)];
      warn(notes.map((n) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}: ${formatPath(n.path)}: ${n.message}`));
    }
    return true;
  });
}

function rbacFilters(push: PushContext, proxy: Proxy, tcp: boolean): EnvoyJson[] {
  const applying = policiesFor<AuthorizationPolicySpec>(push, 'AuthorizationPolicy', proxy);
  const policies = applying.filter((p) => (p.spec?.action ?? 'ALLOW') !== 'CUSTOM');
  targetRefNotes(push);
  const opts: RbacOptions = { trustDomain: push.mesh.trustDomain, trustDomainAliases: push.mesh.trustDomainAliases, tcp, listenerPort: (n) => proxy.explicit?.inboundPorts[String(n)] ?? n };
  const custom = buildCustomAuthz(push, applying, opts);
  const out: EnvoyJson[] = [];
  if (custom) {
    warn(custom.notes);
    out.push(...custom.filters);
  }
  for (const action of ACTIONS) {
    const b = buildRbac(policies, action, opts);
    if (!b) continue;
    warn(b.notes);
    out.push(
      tcp
        ? { name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC_TYPE, ...b.config, stat_prefix: 'tcp.' } }
        : { name: 'envoy.filters.http.rbac', typed_config: { '@type': HTTP_RBAC_TYPE, ...b.config } },
    );
  }
  return out;
}

function applies(ctx: HttpFilterContext): boolean {
  return ctx.kind === 'inbound' || ctx.kind === 'gateway';
}

export const authnStage: HttpFilterStage = {
  name: 'authn',
  build(ctx) {
    if (!applies(ctx)) return [];
    const b = ctx.push.memo(`jwt|${ctx.proxy.namespace}|${JSON.stringify(ctx.proxy.labels)}`, () => buildJwtAuthn(policiesFor<RequestAuthenticationSpec>(ctx.push, 'RequestAuthentication', ctx.proxy), ctx.push));
    if (!b) return [];
    warn(b.notes);
    return [b.filter];
  },
};

export const authzStage: HttpFilterStage = {
  name: 'authz',
  build: (ctx) => (applies(ctx) ? ctx.push.memo(`rbac|http|${ctx.proxy.namespace}|${JSON.stringify(ctx.proxy.labels)}`, () => rbacFilters(ctx.push, ctx.proxy, false)) : []),
};

/** Network RBAC filters for an inbound TCP chain (placed before tcp_proxy). */
export function networkRbacFilters(push: PushContext, proxy: Proxy): EnvoyJson[] {
  return push.memo(`rbac|tcp|${proxy.namespace}|${JSON.stringify(proxy.labels)}`, () => rbacFilters(push, proxy, true));
}
