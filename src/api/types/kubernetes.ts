// Kubernetes core/v1 Service and Namespace: the fields Rigging reads. The full object is
// structurally checked against Kubernetes' schema (see ../schema/).

export interface ServicePortSpec {
  name?: string;
  port: number;
  /** A port number or the name of a container port. */
  targetPort?: number | string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  /** e.g. `http`, `http2`, `grpc`, `kubernetes.io/h2c`: tells the mesh the protocol when the name does not. */
  appProtocol?: string;
  nodePort?: number;
}

export interface ServiceSpec {
  ports?: ServicePortSpec[];
  selector?: Record<string, string>;
  clusterIP?: string;
  clusterIPs?: string[];
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  externalName?: string;
  externalIPs?: string[];
  sessionAffinity?: 'ClientIP' | 'None';
  sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
  publishNotReadyAddresses?: boolean;
  internalTrafficPolicy?: 'Cluster' | 'Local';
  externalTrafficPolicy?: 'Cluster' | 'Local';
  ipFamilies?: ('' | 'IPv4' | 'IPv6')[];
  ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  loadBalancerIP?: string;
  loadBalancerClass?: string;
  loadBalancerSourceRanges?: string[];
  allocateLoadBalancerNodePorts?: boolean;
  healthCheckNodePort?: number;
  trafficDistribution?: string;
}

/** A ConfigMap's content (held as its spec, written at top level). */
export interface ConfigMapData {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  immutable?: boolean;
}

/** Namespaces carry only metadata for the mesh (labels such as `istio-injection`). */
export interface NamespaceSpec {
  finalizers?: string[];
}
