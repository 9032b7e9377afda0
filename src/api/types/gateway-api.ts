// gateway.networking.k8s.io (Gateway API v1; v1beta1 shares the spec). Field names mirror the
// Gateway API's YAML; the structure is checked against its schema (see ../schema/). Only the
// fields Rigging reads are typed; the rest is reported as unsupported by validation.

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface GatewayClassSpec {
  controllerName: string;
  description?: string;
  parametersRef?: { group: string; kind: string; name: string; namespace?: string };
}

export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

export interface RouteGroupKind {
  group?: string;
  kind: string;
}

export interface AllowedRoutes {
  namespaces?: { from?: 'All' | 'Same' | 'Selector' | 'None'; selector?: LabelSelector };
  kinds?: RouteGroupKind[];
}

export interface Listener {
  name: string;
  hostname?: string;
  port: number;
  protocol: string;
  tls?: { mode?: 'Terminate' | 'Passthrough'; certificateRefs?: SecretObjectReference[]; options?: Record<string, string> };
  allowedRoutes?: AllowedRoutes;
}

export interface KubernetesGatewaySpec {
  gatewayClassName: string;
  listeners: Listener[];
  addresses?: { type?: string; value: string }[];
  infrastructure?: Record<string, unknown>;
  tls?: GatewayTLSConfig;
  /** Which namespaces' ListenerSets may add listeners; none by default. */
  allowedListeners?: { namespaces?: { from?: 'All' | 'Same' | 'Selector' | 'None'; selector?: LabelSelector } };
  defaultScope?: string;
}

/** An object reference that may cross namespaces (a frontend CA: ConfigMap or Secret). */
export interface ObjectReference {
  group: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface FrontendTLSValidation {
  caCertificateRefs: ObjectReference[];
  mode?: 'AllowValidOnly' | 'AllowInsecureFallback';
}

/** Gateway spec.tls (Gateway API v1.4+): client-certificate validation per port, and the gateway's client certificate towards backends. */
export interface GatewayTLSConfig {
  frontend?: { default: { validation?: FrontendTLSValidation }; perPort?: { port: number; tls: { validation?: FrontendTLSValidation } }[] };
  backend?: { clientCertificateRef?: SecretObjectReference };
}

/** ListenerSet (v1, Gateway API v1.5): listeners for a parent Gateway, merged after the Gateway's own. */
export interface ListenerSetSpec {
  parentRef: { group?: string; kind?: string; name: string; namespace?: string };
  listeners: Listener[];
}

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface BackendObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HTTPHeaderFilter {
  set?: HTTPHeader[];
  add?: HTTPHeader[];
  remove?: string[];
}

export interface HTTPPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  type: string;
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
  requestRedirect?: { scheme?: 'http' | 'https'; hostname?: string; path?: HTTPPathModifier; port?: number; statusCode?: number };
  urlRewrite?: { hostname?: string; path?: HTTPPathModifier };
  requestMirror?: { backendRef: BackendObjectReference; percent?: number; fraction?: { numerator: number; denominator?: number } };
  extensionRef?: { group: string; kind: string; name: string };
  cors?: HTTPCORSFilter;
  externalAuth?: Record<string, unknown>;
}

/** HTTPRoute filter CORS (Gateway API v1.3+): origins are `scheme://host[:port]`, the host possibly with a `*`, or `*` alone. */
export interface HTTPCORSFilter {
  allowOrigins?: string[];
  allowCredentials?: boolean;
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  /** Seconds; the CRD defaults it to 5. */
  maxAge?: number;
}

export interface HTTPBackendRef extends BackendObjectReference {
  weight?: number;
  filters?: HTTPRouteFilter[];
}

export interface HTTPRouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: { type?: 'Exact' | 'RegularExpression'; name: string; value: string }[];
  queryParams?: { type?: 'Exact' | 'RegularExpression'; name: string; value: string }[];
  method?: string;
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: HTTPBackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { codes?: number[]; attempts?: number; backoff?: string };
  sessionPersistence?: Record<string, unknown>;
}

export interface HTTPRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: HTTPRouteRule[];
  useDefaultGateways?: string;
}

export interface GRPCRouteMatch {
  method?: { type?: 'Exact' | 'RegularExpression'; service?: string; method?: string };
  headers?: { type?: 'Exact' | 'RegularExpression'; name: string; value: string }[];
}

export interface GRPCRouteRule {
  name?: string;
  matches?: GRPCRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: HTTPBackendRef[];
  sessionPersistence?: Record<string, unknown>;
}

export interface GRPCRouteSpec {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: GRPCRouteRule[];
  useDefaultGateways?: string;
}

/** TCPRoute (v1alpha2) and TLSRoute rules: where the connections go. */
export interface L4RouteRule {
  name?: string;
  backendRefs: (BackendObjectReference & { weight?: number })[];
}

export interface TCPRouteSpec {
  parentRefs?: ParentReference[];
  rules: L4RouteRule[];
  useDefaultGateways?: string;
}

export interface TLSRouteSpec {
  parentRefs?: ParentReference[];
  /** The SNI names routed (required from v1alpha3). */
  hostnames?: string[];
  rules: L4RouteRule[];
  useDefaultGateways?: string;
}

export interface ReferenceGrantSpec {
  from: { group: string; kind: string; namespace: string }[];
  to: { group: string; kind: string; name?: string }[];
}

/** Istio's listener TLS option for the server's TLS mode in Terminate (SIMPLE, MUTUAL or ISTIO_MUTUAL), as Istio's Secure Gateways task sets it. */
export interface LocalPolicyTargetReferenceWithSectionName {
  group: string;
  kind: string;
  name: string;
  sectionName?: string;
}

export interface SubjectAltName {
  type: 'Hostname' | 'URI';
  hostname?: string;
  uri?: string;
}

export interface BackendTLSPolicySpec {
  targetRefs: LocalPolicyTargetReferenceWithSectionName[];
  validation: {
    caCertificateRefs?: { group: string; kind: string; name: string }[];
    wellKnownCACertificates?: string;
    hostname: string;
    subjectAltNames?: SubjectAltName[];
  };
  options?: Record<string, string>;
}

export const TLS_TERMINATE_MODE_OPTION = 'gateway.istio.io/tls-terminate-mode';
/** Istio's listener option naming an east-west gateway's TLS Passthrough listener AUTO_PASSTHROUGH (its value `auto-passthrough`). */
export const LISTENER_PROTOCOL_OPTION = 'gateway.istio.io/listener-protocol';
