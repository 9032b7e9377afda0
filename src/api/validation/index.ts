// Validation of one resource: structure against the official schema, then Istio's semantic
// rules (only on a structurally sound spec, so that rules can trust the types).
import type { Diagnostic } from '../diagnostic.ts';
import { TOP_LEVEL_CONTENT, writtenKind } from '../kinds.ts';
import type { Resource } from '../resource.ts';
import type { Locator } from '../source-map.ts';
import { fixedLocator } from '../source-map.ts';
import type * as T from '../index.ts';
import { validateEnvoyFilter } from './envoy-filter.ts';
import { validateDestinationRule } from './destination-rule.ts';
import { validateGateway } from './gateway.ts';
import { validateGRPCRoute, validateGatewayClass, validateHTTPRoute, validateKubernetesGateway, validateListenerSet, validateReferenceGrant, validateTCPRoute, validateTLSRoute } from './gateway-api.ts';
import { validateBackendTLSPolicy } from './backend-tls-policy.ts';
import { validateConfigMap, validateMetadataName, validateNamespace, validateService, validateWorkload } from './kubernetes.ts';
import { Reporter } from './reporter.ts';
import { validateAuthorizationPolicy, validatePeerAuthentication, validateRequestAuthentication } from './security.ts';
import { validateServiceEntry } from './service-entry.ts';
import { validateSidecar, validateWorkloadEntry, validateWorkloadGroup } from './sidecar.ts';
import { checkCelRules } from './cel-rules.ts';
import { istioSchemaFor, validateStructure } from './structural.ts';
import type { TelemetryOptions } from './telemetry.ts';
import { validateTelemetry } from './telemetry.ts';
import { reportUnsupported } from './unsupported.ts';
import { validateVirtualService } from './virtual-service.ts';
import { validateProxyConfig } from './proxy-config.ts';
import { validateWasmPlugin } from './wasm-plugin.ts';

export interface ValidateOptions {
  telemetry?: TelemetryOptions;
}

const REQUIRES_SPEC = new Set(['ServiceEntry', 'WorkloadEntry', 'WorkloadGroup', 'Workload', 'GatewayClass', 'KubernetesGateway', 'ListenerSet', 'ReferenceGrant', 'TCPRoute', 'TLSRoute', 'BackendTLSPolicy']);

/** All problems of one resource. `raw` is the object as written (default: the resource); `locator` maps field paths to positions. */
export function validateResource(resource: Resource, raw?: Record<string, unknown>, locator?: Locator, opts: ValidateOptions = {}): Diagnostic[] {
  const r = new Reporter(resource, locator ?? fixedLocator(resource.source));
  try {
    const spec = raw && !TOP_LEVEL_CONTENT[resource.kind] ? raw.spec : resource.spec;
    validateMetadataName(r);
    if ((spec === undefined || spec === null) && REQUIRES_SPEC.has(resource.kind)) {
      r.error(['spec'], `${writtenKind(resource.kind)} needs a spec`, 'add spec');
      return r.diagnostics;
    }
    if (!validateStructure(resource, spec ?? {}, r)) return r.diagnostics;
    const before = r.diagnostics.length;
    validateSemantics(resource.kind, spec ?? {}, r, opts);
    reportUnsupported(resource.kind, spec ?? {}, r);
    checkIstioRules(resource, spec ?? {}, r, r.diagnostics.slice(before), locator);
  } catch (err) {
    r.error([], `internal validation error: ${(err as Error).message}`, 'please report this; the resource was not accepted');
  }
  return r.diagnostics;
}

/**
 * The CRD's own CEL rules, after the semantic rules: a CEL failure is reported unless a semantic
 * rule already said something about that field (its message says more, and what to do).
 */
function checkIstioRules(resource: Resource, spec: unknown, r: Reporter, semantic: readonly Diagnostic[], locator: Locator | undefined): void {
  const schema = istioSchemaFor(resource);
  if (schema === undefined) return;
  const cel = new Reporter(resource, locator ?? fixedLocator(resource.source));
  checkCelRules(schema, spec, ['spec'], cel);
  const said = semantic.filter((d) => d.severity === 'Error').map((d) => d.path ?? '');
  const overlaps = (a: string, b: string) => a === b || a.startsWith(b + '.') || a.startsWith(b + '[') || b.startsWith(a + '.') || b.startsWith(a + '[');
  for (const d of cel.diagnostics) if (!said.some((p) => overlaps(p, d.path ?? ''))) r.diagnostics.push(d);
}

function validateSemantics(kind: Resource['kind'], spec: unknown, r: Reporter, opts: ValidateOptions): void {
  switch (kind) {
    case 'VirtualService':
      return validateVirtualService(spec as T.VirtualServiceSpec, r);
    case 'DestinationRule':
      return validateDestinationRule(spec as T.DestinationRuleSpec, r);
    case 'Gateway':
      return validateGateway(spec as T.GatewaySpec, r);
    case 'ServiceEntry':
      return validateServiceEntry(spec as T.ServiceEntrySpec, r);
    case 'Sidecar':
      return validateSidecar(spec as T.SidecarSpec, r);
    case 'WorkloadEntry':
      return validateWorkloadEntry(spec as T.WorkloadEntrySpec, r);
    case 'WorkloadGroup':
      return validateWorkloadGroup(spec as T.WorkloadGroupSpec, r);
    case 'PeerAuthentication':
      return validatePeerAuthentication(spec as T.PeerAuthenticationSpec, r);
    case 'RequestAuthentication':
      return validateRequestAuthentication(spec as T.RequestAuthenticationSpec, r);
    case 'AuthorizationPolicy':
      return validateAuthorizationPolicy(spec as T.AuthorizationPolicySpec, r);
    case 'Telemetry':
      return validateTelemetry(spec as T.TelemetrySpec, r, opts.telemetry);
    case 'EnvoyFilter':
      return validateEnvoyFilter(spec as T.EnvoyFilterSpec, r);
    case 'WasmPlugin':
      return validateWasmPlugin(spec as T.WasmPluginSpec, r);
    case 'ProxyConfig':
      return validateProxyConfig(spec as T.ProxyConfigSpec, r);
    case 'Service':
      return validateService(spec as T.ServiceSpec, r);
    case 'ConfigMap':
      return validateConfigMap(spec as T.ConfigMapData, r);
    case 'Namespace':
      return validateNamespace(r);
    case 'Workload':
      return validateWorkload(spec as T.WorkloadSpec, r);
    case 'GatewayClass':
      return validateGatewayClass(spec as T.GatewayApi.GatewayClassSpec, r);
    case 'KubernetesGateway':
      return validateKubernetesGateway(spec as T.GatewayApi.KubernetesGatewaySpec, r);
    case 'ListenerSet':
      return validateListenerSet(spec as T.GatewayApi.ListenerSetSpec, r);
    case 'HTTPRoute':
      return validateHTTPRoute(spec as T.GatewayApi.HTTPRouteSpec, r);
    case 'GRPCRoute':
      return validateGRPCRoute(spec as T.GatewayApi.GRPCRouteSpec, r);
    case 'TCPRoute':
      return validateTCPRoute(spec as T.GatewayApi.TCPRouteSpec, r);
    case 'TLSRoute':
      return validateTLSRoute(spec as T.GatewayApi.TLSRouteSpec, r, r.resource.apiVersion);
    case 'ReferenceGrant':
      return validateReferenceGrant(spec as T.GatewayApi.ReferenceGrantSpec, r);
    case 'BackendTLSPolicy':
      return validateBackendTLSPolicy(spec as T.GatewayApi.BackendTLSPolicySpec, r);
  }
}
