// The extension table: every built-in filter, access logger, tracer and cluster hook registers
// itself through an explicit setup() call listed here (no import side effects). To add one,
// append its setup to EXTENSIONS.
import { registerNetworkFilter } from './network/network-filter.ts';
import { registerHttpFilter } from './filters/registry.ts';
import { httpConnectionManagerFactory } from './http/connection-manager.ts';
import { tcpProxyFactory } from './tcp/tcp-proxy.ts';
import { setup as setupFileAccessLog } from './access-log/file-access-log.ts';
import { setup as setupLoadBalancers } from './upstream/lb/index.ts';
import { setup as setupCircuitBreakers } from './upstream/circuit-breaker-hook.ts';
import { setup as setupOutlierDetection } from './upstream/outlier-detection-hook.ts';
import { setup as setupHealthChecks } from './upstream/health-check-hook.ts';
import { setup as setupRbac } from './filters/rbac/rbac-filter.ts';
import { rbacNetworkFilterFactory } from './network/rbac-network-filter.ts';
import { setup as setupJwtAuthn } from './filters/jwt-authn/jwt-authn-filter.ts';
import { setup as setupExtAuthz } from './filters/ext-authz/ext-authz-filter.ts';
import { networkExtAuthzFactory } from './filters/ext-authz/ext-authz-network.ts';
import { setup as setupTelemetry } from './telemetry/index.ts';
import { setup as setupFault } from './filters/fault/fault-filter.ts';
import { setup as setupCors } from './filters/cors/cors-filter.ts';
import { setup as setupHealthCheck } from './filters/health-check/health-check-filter.ts';
import { setup as setupLocalRateLimit } from './filters/local-ratelimit/local-ratelimit-filter.ts';
import { setup as setupRateLimit } from './filters/ratelimit/ratelimit-filter.ts';
import { setup as setupAlpn } from './filters/alpn/alpn-filter.ts';
import { setup as setupGrpcWeb } from './filters/grpc-web/grpc-web-filter.ts';
import { setup as setupCsrf } from './filters/csrf/csrf-filter.ts';
import { networkLocalRateLimitFactory } from './filters/local-ratelimit/local-ratelimit-network.ts';
import { setup as setupCompressor } from './filters/compressor/compressor-filter.ts';
import { setup as setupDecompressor } from './filters/decompressor/decompressor-filter.ts';
import { setup as setupLua } from './filters/lua/lua-filter.ts';
import { setup as setupWasm } from './filters/wasm/wasm-filter.ts';
import { setup as setupWasmNetwork } from './filters/wasm/wasm-network.ts';

export { registerHttpFilter, registerNetworkFilter };

const EXTENSIONS: (() => void)[] = [
  () => registerNetworkFilter(httpConnectionManagerFactory),
  () => registerNetworkFilter(tcpProxyFactory),
  setupFileAccessLog,
  setupLoadBalancers,
  setupCircuitBreakers,
  setupOutlierDetection,
  setupHealthChecks,
  setupRbac,
  () => registerNetworkFilter(rbacNetworkFilterFactory),
  setupJwtAuthn,
  setupExtAuthz,
  () => registerNetworkFilter(networkExtAuthzFactory),
  setupTelemetry,
  setupFault,
  setupCors,
  setupHealthCheck,
  setupLocalRateLimit,
  () => registerNetworkFilter(networkLocalRateLimitFactory),
  setupRateLimit,
  setupAlpn,
  setupCompressor,
  setupDecompressor,
  setupGrpcWeb,
  setupCsrf,
  setupLua,
  setupWasm,
  setupWasmNetwork,
];

let done = false;

export function setupExtensions(): void {
  if (done) return;
  done = true;
  for (const s of EXTENSIONS) s();
}
