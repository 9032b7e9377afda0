// `rig demo`: Bookinfo on a local mesh, with Istio's bookinfo Gateway and DestinationRules (or
// with --gateway-api its Gateway API Gateway and HTTPRoute), the gateway bound on the host, and
// traffic to /productpage.
import { fileURLToPath } from 'node:url';
import { DEFAULT_MESH_CONFIG, type MeshConfig } from '../model/mesh-config.ts';
import type { Supervisor } from './supervisor.ts';
import { controlPlaneHost, describePorts } from './status.ts';

export const BOOKINFO_DIR = fileURLToPath(new URL('../../examples/bookinfo/', import.meta.url));

export const DEMO_PATHS = [`${BOOKINFO_DIR}local`, `${BOOKINFO_DIR}networking/bookinfo-gateway.yaml`, `${BOOKINFO_DIR}networking/destination-rule-all.yaml`];

/**
 * `rig demo --gateway-api`, as Istio's Getting Started: Bookinfo behind a Kubernetes Gateway API
 * Gateway (its gateway, bookinfo-gateway-istio, listens on port 80, which the demo binds on 8080)
 * and a Service per version for the Gateway API's traffic tasks.
 */
export const GATEWAY_API_DEMO_PATHS = [`${BOOKINFO_DIR}local`, `${BOOKINFO_DIR}gateway-api/bookinfo-gateway.yaml`, `${BOOKINFO_DIR}gateway-api/bookinfo-versions.yaml`];
const GATEWAY_API_GATEWAY = 'bookinfo-gateway-istio';
export const GATEWAY_API_PORTS = { 80: 8080 };

/**
 * The demo runs no trace collector, so it configures no tracer: Istio's default one (zipkin.istio-system:9411)
 * would only drop spans, and each proxy would warn so. With the user's --mesh-config (e.g. a tracing
 * provider for a collector they run), Istio's demo profile: every request traced.
 */
export function demoMeshConfig(base: MeshConfig = DEFAULT_MESH_CONFIG, userMeshConfig = false): MeshConfig {
  if (!userMeshConfig) return { ...base, enableTracing: false };
  return { ...base, defaultConfig: { ...base.defaultConfig, tracing: { ...base.defaultConfig.tracing, sampling: 100 } } };
}

/** The productpage URL through the ingress gateway (or, with --gateway-api, the Gateway API gateway). */
export function productPageUrl(sup: Supervisor): string {
  const gw = sup.processes().find((p) => p.name === 'istio-ingressgateway' || p.name === GATEWAY_API_GATEWAY);
  const hostPort = gw?.ports.gateway?.[gw.name === GATEWAY_API_GATEWAY ? '80' : '8080'] ?? 8080;
  const bind = sup.opts.gatewayBind ?? '127.0.0.1';
  const host = bind === '0.0.0.0' ? '127.0.0.1' : bind.includes(':') ? `[${bind}]` : bind;
  return `http://${host}:${hostPort}/productpage`;
}

export function whereToLook(sup: Supervisor, stateDirFlag: string): string[] {
  const s = sup.status();
  const lines = [
    '',
    `Bookinfo is up. Open ${productPageUrl(sup)}`,
    sup.processes().some((p) => p.name === GATEWAY_API_GATEWAY)
      ? '  (sign in as "jason" to see the request-routing task: rig apply -f examples/bookinfo/gateway-api/route-reviews-jason-v2.yaml)'
      : '  (sign in as "jason" to see the request-routing task: rig apply -f examples/bookinfo/networking/virtual-service-reviews-test-v2.yaml)',
    '',
    'Sidecar and gateway metrics (Prometheus):',
    ...s.processes.filter((p) => p.ports.stats).map((p) => `  ${p.name.padEnd(22)} http://${p.address ?? '127.0.0.1'}:${p.ports.stats}/stats/prometheus`),
    `Control plane monitoring:  http://${controlPlaneHost(s)}:${s.controlPlane?.monitoringPort}/metrics`,
    '',
    'Processes and ports:',
    ...s.processes.map((p) => `  ${p.name.padEnd(22)} ${describePorts(p)}`),
    '',
    `More: rig status${stateDirFlag}   rig logs productpage-v1${stateDirFlag}   rig apply -f FILE${stateDirFlag}   Ctrl-C (or rig down${stateDirFlag}) stops everything.`,
    '',
  ];
  return lines;
}
