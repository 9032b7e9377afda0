// networking.istio.io (v1; v1beta1 and v1alpha3 share the same schema). Field names mirror
// Istio's YAML exactly; the structure is checked against Istio's CRD schema (see ../schema/).

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface PortSelector {
  number?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: Headers;
}

export interface RouteDestination {
  destination: Destination;
  weight?: number;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
  sourceNamespace?: string;
  statPrefix?: string;
}

export interface HTTPRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  redirectCode?: number;
}

export interface HTTPBody {
  string?: string;
  bytes?: string;
}

export interface HTTPDirectResponse {
  status: number;
  body?: HTTPBody;
}

export interface RegexRewrite {
  match?: string;
  rewrite?: string;
}

export interface HTTPRewrite {
  uri?: string;
  authority?: string;
  uriRegexRewrite?: RegexRewrite;
}

export interface HTTPRetry {
  attempts?: number;
  perTryTimeout?: string;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
  retryIgnorePreviousHosts?: boolean;
  backoff?: string;
}

export interface StringOrRegex {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

export interface Percent {
  value?: number;
}

export interface HTTPFaultInjection {
  delay?: { fixedDelay?: string; exponentialDelay?: string; percentage?: Percent; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; http2Error?: string; percentage?: Percent };
}

export interface HTTPMirrorPolicy {
  destination: Destination;
  percentage?: Percent;
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  delegate?: { name?: string; namespace?: string };
  rewrite?: HTTPRewrite;
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrors?: HTTPMirrorPolicy[];
  mirrorPercentage?: Percent;
  mirrorPercent?: number;
  mirror_percent?: number;
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceSubnet?: string;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface TLSMatchAttributes extends L4MatchAttributes {
  sniHosts: string[];
}

export interface TCPRoute {
  match?: L4MatchAttributes[];
  route?: RouteDestination[];
}

export interface TLSRoute {
  match: TLSMatchAttributes[];
  route?: RouteDestination[];
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: TLSRoute[];
  tcp?: TCPRoute[];
  exportTo?: string[];
}

export interface LoadBalancerSettings {
  simple?: 'UNSPECIFIED' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'LEAST_CONN';
  consistentHash?: {
    httpHeaderName?: string;
    httpCookie?: { name: string; path?: string; ttl?: string; attributes?: { name: string; value?: string }[] };
    useSourceIp?: boolean;
    httpQueryParameterName?: string;
    ringHash?: { minimumRingSize?: number };
    maglev?: { tableSize?: number };
    minimumRingSize?: number;
  };
  localityLbSetting?: {
    distribute?: { from?: string; to?: Record<string, number> }[];
    failover?: { from?: string; to?: string }[];
    failoverPriority?: string[];
    enabled?: boolean;
  };
  warmupDurationSecs?: string;
  warmup?: { duration: string; minimumPercent?: number; aggression?: number };
}

export interface ConnectionPoolSettings {
  tcp?: {
    maxConnections?: number;
    connectTimeout?: string;
    tcpKeepalive?: { probes?: number; time?: string; interval?: string };
    maxConnectionDuration?: string;
    idleTimeout?: string;
  };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
    h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
    useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
}

export interface OutlierDetection {
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number;
  consecutiveGatewayErrors?: number;
  consecutive5xxErrors?: number;
  consecutiveErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

export interface ClientTLSSettings {
  mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
  caCrl?: string;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: (Omit<TrafficPolicy, 'portLevelSettings' | 'tunnel' | 'proxyProtocol' | 'retryBudget'> & { port?: PortSelector })[];
  tunnel?: { protocol?: string; targetHost: string; targetPort: number };
  proxyProtocol?: { version?: 'V1' | 'V2' };
  retryBudget?: { percent?: number; minRetryConcurrency?: number };
}

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

/** The selector of ServiceEntry and Sidecar (networking.istio.io's own type: `labels`, not `matchLabels`). */
export interface NetworkingWorkloadSelector {
  labels?: Record<string, string>;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: WorkloadSelector;
}

export interface Port {
  number: number;
  protocol?: string;
  name: string;
  targetPort?: number;
}

export interface ServerTLSSettings {
  httpsRedirect?: boolean;
  mode?: 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  caCrl?: string;
  credentialName?: string;
  credentialNames?: string[];
  /** The secret or ConfigMap (`configmap://ns/name`) whose ca.crt verifies client certificates, instead of credentialName's. */
  caCertCredentialName?: string;
  /** OPTIONAL_MUTUAL only: a client certificate that fails verification is accepted too (Gateway API AllowInsecureFallback). */
  insecureSkipVerify?: boolean;
  tlsCertificates?: { serverCertificate?: string; privateKey?: string; caCertificates?: string }[];
  subjectAltNames?: string[];
  verifyCertificateSpki?: string[];
  verifyCertificateHash?: string[];
  minProtocolVersion?: string;
  maxProtocolVersion?: string;
  cipherSuites?: string[];
}

export interface Server {
  port: Port;
  bind?: string;
  hosts: string[];
  tls?: ServerTLSSettings;
  defaultEndpoint?: string;
  name?: string;
}

export interface GatewaySpec {
  servers?: Server[];
  selector?: Record<string, string>;
}

export interface ServicePort {
  number: number;
  protocol?: string;
  name: string;
  targetPort?: number;
}

export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: NetworkingWorkloadSelector;
  exportTo?: string[];
  subjectAltNames?: string[];
}

export interface IstioEgressListener {
  port?: { number?: number; protocol?: string; name?: string; targetPort?: number };
  bind?: string;
  captureMode?: 'DEFAULT' | 'IPTABLES' | 'NONE';
  hosts: string[];
}

export interface IstioIngressListener {
  port: { number?: number; protocol?: string; name?: string; targetPort?: number };
  bind?: string;
  captureMode?: 'DEFAULT' | 'IPTABLES' | 'NONE';
  defaultEndpoint?: string;
  tls?: ServerTLSSettings;
  connectionPool?: ConnectionPoolSettings;
}

export interface SidecarSpec {
  workloadSelector?: NetworkingWorkloadSelector;
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  inboundConnectionPool?: ConnectionPoolSettings;
  outboundTrafficPolicy?: { mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY'; egressProxy?: Destination };
}

export interface ReadinessProbe {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  httpGet?: { path?: string; port: number; host?: string; scheme?: string; httpHeaders?: { name?: string; value?: string }[] };
  tcpSocket?: { host?: string; port: number };
  exec?: { command?: string[] };
  grpc?: { port?: number; service?: string };
}

export interface WorkloadGroupSpec {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  template: WorkloadEntrySpec;
  probe?: ReadinessProbe;
}

/** EnvoyFilter (networking.istio.io/v1alpha3): patches to the Envoy configuration a proxy gets. */
export type EnvoyFilterApplyTo =
  | 'INVALID'
  | 'LISTENER'
  | 'FILTER_CHAIN'
  | 'NETWORK_FILTER'
  | 'HTTP_FILTER'
  | 'ROUTE_CONFIGURATION'
  | 'VIRTUAL_HOST'
  | 'HTTP_ROUTE'
  | 'CLUSTER'
  | 'EXTENSION_CONFIG'
  | 'BOOTSTRAP'
  | 'LISTENER_FILTER';
export type EnvoyFilterContext = 'ANY' | 'SIDECAR_INBOUND' | 'SIDECAR_OUTBOUND' | 'GATEWAY';
export type EnvoyFilterOperation = 'INVALID' | 'MERGE' | 'ADD' | 'REMOVE' | 'INSERT_BEFORE' | 'INSERT_AFTER' | 'INSERT_FIRST' | 'REPLACE';

export interface EnvoyFilterListenerMatch {
  portNumber?: number;
  portName?: string;
  name?: string;
  listenerFilter?: string;
  filterChain?: {
    name?: string;
    sni?: string;
    transportProtocol?: string;
    applicationProtocols?: string;
    destinationPort?: number;
    filter?: { name?: string; subFilter?: { name?: string } };
  };
}

export interface EnvoyFilterRouteConfigurationMatch {
  portNumber?: number;
  portName?: string;
  gateway?: string;
  name?: string;
  vhost?: { name?: string; domainName?: string; route?: { name?: string; action?: 'ANY' | 'ROUTE' | 'REDIRECT' | 'DIRECT_RESPONSE' } };
}

export interface EnvoyFilterClusterMatch {
  portNumber?: number;
  service?: string;
  subset?: string;
  name?: string;
}

export interface EnvoyFilterObjectMatch {
  context?: EnvoyFilterContext;
  proxy?: { proxyVersion?: string; metadata?: Record<string, string> };
  listener?: EnvoyFilterListenerMatch;
  routeConfiguration?: EnvoyFilterRouteConfigurationMatch;
  cluster?: EnvoyFilterClusterMatch;
}

export interface EnvoyFilterConfigPatch {
  applyTo?: EnvoyFilterApplyTo;
  match?: EnvoyFilterObjectMatch;
  patch?: { operation?: EnvoyFilterOperation; value?: Record<string, unknown>; filterClass?: string };
}

export interface EnvoyFilterSpec {
  workloadSelector?: NetworkingWorkloadSelector;
  targetRefs?: unknown[];
  configPatches?: EnvoyFilterConfigPatch[];
  priority?: number;
}
