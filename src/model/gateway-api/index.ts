// The Gateway API as istiod serves it (pilot/pkg/config/kube/gateway): the Gateway API resources
// of a snapshot become Istio Gateways and VirtualServices, which the push context holds beside the
// user's own so the usual generators program the proxies. What Istio would report in the
// resources' status comes back as diagnostics.
import type { DestinationRuleSpec, Diagnostic, GatewayApi, GatewaySpec, Resource, ServiceSpec, VirtualServiceSpec } from '../../api/index.ts';
import type { Credential } from '../push-context.ts';
import { protocolOf } from '../service.ts';
import { convertBackendTlsPolicies } from './backend-tls-policies.ts';
import { convertGateways, deployedListeners, namespaceLabelsOf } from './gateways.ts';
import { ReferenceGrants } from './reference-grants.ts';
import { convertL4Routes } from './l4-routes.ts';
import { convertRoutes } from './routes.ts';
import { StatusReport } from './status.ts';

export { GATEWAY_PARENT_NAMESPACE_ANNOTATION, GATEWAY_SEMANTICS_ANNOTATION } from './gateways.ts';
export { GATEWAY_API_CODES } from './status.ts';
export { PREFIX_REDIRECT_MARKER, ROUTE_SEMANTICS_ANNOTATION, prefixReplacement } from './routes.ts';

export interface GatewayApiInput {
  /** The snapshot's resources, oldest first (route precedence breaks ties by age). */
  resources: readonly Resource[];
  /** Whether the service registry has a service of this host name. */
  hasService(host: string): boolean;
  /** The protocol a service port declares, if the registry has it. */
  portProtocol?(host: string, port: number): string | undefined;
  /** A credentialName secret (the credentials directory), to check a Gateway's backend clientCertificateRef; unchecked when absent. */
  credential?(name: string): Credential | undefined;
  /** The number of a service port by name, if the registry has it (a BackendTLSPolicy's sectionName). */
  servicePortNamed?(host: string, name: string): number | undefined;
  domainSuffix?: string;
}

export interface GatewayApiOutput {
  gateways: Resource<GatewaySpec>[];
  virtualServices: Resource<VirtualServiceSpec>[];
  /** From BackendTLSPolicies. */
  destinationRules: Resource<DestinationRuleSpec>[];
  diagnostics: Diagnostic[];
}

const GATEWAY_API_KINDS: ReadonlySet<string> = new Set(['GatewayClass', 'KubernetesGateway', 'HTTPRoute', 'GRPCRoute', 'TCPRoute', 'TLSRoute', 'ReferenceGrant', 'ListenerSet', 'BackendTLSPolicy']);

export function hasGatewayApiResources(resources: readonly Resource[]): boolean {
  return resources.some((r) => GATEWAY_API_KINDS.has(r.kind));
}

export function translateGatewayApi(input: GatewayApiInput): GatewayApiOutput {
  const status = new StatusReport();
  const { resources } = input;
  const grants = new ReferenceGrants(resources.filter((r) => r.kind === 'ReferenceGrant') as unknown as Resource<GatewayApi.ReferenceGrantSpec>[]);
  const gateways = convertGateways(resources, grants, namespaceLabelsOf(resources), status, input.credential);
  const routeInput = { resources, gateways, grants, hasService: input.hasService, portProtocol: input.portProtocol, domainSuffix: input.domainSuffix ?? 'cluster.local', status };
  const virtualServices = [...convertRoutes(routeInput), ...convertL4Routes(routeInput)];
  const domainSuffix = input.domainSuffix ?? 'cluster.local';
  const destinationRules = convertBackendTlsPolicies({ resources, domainSuffix, hasService: input.hasService, servicePortNamed: input.servicePortNamed, status });
  return { gateways: gateways.gateways, virtualServices, destinationRules, diagnostics: status.diagnostics };
}

/**
 * The status diagnostics of a set of configuration files alone (`rig analyze`): the services are
 * those the files declare (Service, ServiceEntry hosts), as there is no registry to ask, and the
 * `<name>-istio` Service Istio's automated deployment (and `rig up`) creates for each Gateway of
 * class istio, with the ports of its listeners and of the ListenerSets it allows, the first
 * listener on a port giving its protocol (Istio's egress gateway task routes to it).
 */
export function gatewayApiStatus(resources: readonly Resource[], domainSuffix = 'cluster.local'): Diagnostic[] {
  if (!hasGatewayApiResources(resources)) return [];
  const hosts = new Set<string>();
  const protocols = new Map<string, string>();
  const portNames = new Map<string, number>();
  const namespaceLabels = namespaceLabelsOf(resources);
  for (const r of resources) {
    if (r.kind === 'Service') {
      const host = `${r.metadata.name}.${r.metadata.namespace}.svc.${domainSuffix}`;
      hosts.add(host);
      for (const p of (r.spec as ServiceSpec).ports ?? []) {
        protocols.set(`${host}:${p.port}`, protocolOf(p.name, p.appProtocol));
        if (p.name) portNames.set(`${host}:${p.name}`, p.port);
      }
    }
    if (r.kind === 'ServiceEntry') for (const h of (r.spec as { hosts?: string[] }).hosts ?? []) hosts.add(h);
    const gateway = r.kind === 'KubernetesGateway' ? (r as unknown as Resource<GatewayApi.KubernetesGatewaySpec>) : undefined;
    if (gateway?.spec.gatewayClassName === 'istio') {
      const host = `${r.metadata.name}-istio.${r.metadata.namespace}.svc.${domainSuffix}`;
      if (!hosts.has(host)) for (const l of deployedListeners(gateway, resources, namespaceLabels)) if (!protocols.has(`${host}:${l.port}`)) protocols.set(`${host}:${l.port}`, protocolOf(l.protocol.toLowerCase()));
      hosts.add(host);
    }
  }
  return translateGatewayApi({ resources, hasService: (h) => hosts.has(h), portProtocol: (h, port) => protocols.get(`${h}:${port}`), servicePortNamed: (h, name) => portNames.get(`${h}:${name}`), domainSuffix }).diagnostics;
}
