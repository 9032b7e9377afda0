// Istio's analyzer message codes (istioctl analyze), for the messages Rigging reports.
import type { Severity } from '../diagnostic.ts';

export const MESSAGES = {
  ReferencedResourceNotFound: { code: 'IST0101', level: 'Error' },
  SchemaValidationError: { code: 'IST0106', level: 'Error' },
  ConflictingMeshGatewayVirtualServiceHosts: { code: 'IST0109', level: 'Error' },
  MultipleSidecarsWithoutWorkloadSelectors: { code: 'IST0111', level: 'Error' },
  VirtualServiceDestinationPortSelectorRequired: { code: 'IST0112', level: 'Error' },
  PortNameIsNotUnderNamingConvention: { code: 'IST0118', level: 'Info' },
  NoMatchingWorkloadsFound: { code: 'IST0127', level: 'Warning' },
  VirtualServiceIneffectiveMatch: { code: 'IST0131', level: 'Info' },
  VirtualServiceHostNotFoundInGateway: { code: 'IST0132', level: 'Warning' },
  ServiceEntryAddressesRequired: { code: 'IST0134', level: 'Warning' },
  ConflictingGateways: { code: 'IST0145', level: 'Error' },
  EnvoyFilterUsesRelativeOperation: { code: 'IST0151', level: 'Warning' },
  MultipleTelemetriesWithoutWorkloadSelectors: { code: 'IST0160', level: 'Error' },
  GatewayPortNotDefinedOnService: { code: 'IST0162', level: 'Warning' },
} as const satisfies Record<string, { code: string; level: Severity }>;

export type MessageName = keyof typeof MESSAGES;

/** Istio's page for a code, e.g. https://istio.io/latest/docs/reference/config/analysis/ist0101/ */
export function documentationUrl(code: string): string | undefined {
  return /^IST\d{4}$/.test(code) ? `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/` : undefined;
}
