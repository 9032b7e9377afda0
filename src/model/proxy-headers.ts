// Istio's ProxyConfig proxyHeaders: which headers the proxy adds, removes or forwards. Set mesh-wide
// (MeshConfig defaultConfig.proxyHeaders) or per proxy (the `proxy.istio.io/config` annotation, node
// metadata PROXY_CONFIG), the proxy's own fields replacing the mesh default's, as for gatewayTopology.
import { FORWARD_CLIENT_CERT_DETAILS, type ForwardClientCertDetails } from './gateway-topology.ts';
import { bool, enumOf, isObject, message, string } from './proto-json-fields.ts';

export interface SetCurrentClientCertDetails {
  subject?: boolean;
  cert?: boolean;
  chain?: boolean;
  dns?: boolean;
  uri?: boolean;
}

export interface ProxyHeaders {
  /** Sidecar inbound x-forwarded-client-cert handling (gateways use gatewayTopology's); UNDEFINED or unset: APPEND_FORWARD. */
  forwardedClientCert?: ForwardClientCertDetails;
  /** The client certificate details a sidecar's inbound XFCC carries; unset: subject, uri and dns. */
  setCurrentClientCertDetails?: SetCurrentClientCertDetails;
  requestId?: { disabled?: boolean };
  server?: { disabled?: boolean; value?: string };
  attemptCount?: { disabled?: boolean };
  envoyDebugHeaders?: { disabled?: boolean };
  metadataExchangeHeaders?: { mode?: MetadataExchangeMode };
  /** The preserve_case header formatter on the proxy's HTTP connection managers and HTTP/1 clusters (xds/translate/proxy-headers.ts). */
  preserveHttp1HeaderCase?: boolean;
}

/** ProxyConfig.ProxyHeaders.MetadataExchangeMode, in its proto order. */
const METADATA_EXCHANGE_MODES = ['UNDEFINED', 'IN_MESH'] as const;
export type MetadataExchangeMode = (typeof METADATA_EXCHANGE_MODES)[number];

const disabled = message({ disabled: bool });

const readProxyHeaders = message(
  {
    forwardedClientCert: enumOf(FORWARD_CLIENT_CERT_DETAILS),
    setCurrentClientCertDetails: message({ subject: bool, cert: bool, chain: bool, dns: bool, uri: bool }),
    requestId: disabled,
    server: message({ disabled: bool, value: string }),
    attemptCount: disabled,
    envoyDebugHeaders: disabled,
    metadataExchangeHeaders: message({ mode: enumOf(METADATA_EXCHANGE_MODES) }),
    preserveHttp1HeaderCase: bool,
  },
  {
    xForwardedHost: "Rigging's control plane does not generate x-forwarded-host yet; remove the field",
    xForwardedPort: "Rigging's control plane does not generate x-forwarded-port yet; remove the field",
  },
);

/**
 * Validates a proxyHeaders object (`at` is its path in error messages), pushing each problem to
 * `errors`; proto JSON's enum numbers and `{ value }` wrappers are accepted, as Istio's parser does.
 */
export function parseProxyHeaders(v: unknown, at: string, errors: string[]): ProxyHeaders | undefined {
  if (v === undefined || v === null) return undefined;
  return readProxyHeaders(v, at, errors) as ProxyHeaders | undefined;
}

/** The proxy's headers settings: the mesh default's fields, each replaced by the proxy's own where it sets it (sub-messages merged field by field, as a proto merge). */
export function effectiveProxyHeaders(meshDefault: ProxyHeaders | undefined, own: ProxyHeaders | undefined): ProxyHeaders {
  const out: Record<string, unknown> = { ...meshDefault };
  for (const [k, v] of Object.entries(own ?? {})) out[k] = isObject(v) && isObject(out[k]) ? { ...out[k], ...v } : v;
  return out as ProxyHeaders;
}
