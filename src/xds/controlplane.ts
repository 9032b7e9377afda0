// `startControlPlane(opts)`: config store → registry → push context → ADS, plus the monitoring
// HTTP server. Returns the running object (ports, stop()). Other parts attach to its gRPC server:
//   cp.grpcServer.addService(definition, implementation)   // e.g. the CA's IstioCertificateService
//   await cp.bindTls(15012, grpc.ServerCredentials.createSsl(...))   // ADS + CA over TLS
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { ConfigStore } from '../config/store.ts';
import { RigError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import type { MeshConfig } from '../model/mesh-config.ts';
import { DEFAULT_MESH_CONFIG } from '../model/mesh-config.ts';
import type { CredentialSource } from '../model/push-context.ts';
import type { GatewayDnsOptions } from '../model/gateway-names.ts';
import { directoryCredentials } from '../registry/credentials.ts';
import { ServiceRegistry } from '../registry/service-registry.ts';
import { VipAllocator } from '../registry/vip-allocator.ts';
import { createDebugServer } from './server/debug-server.ts';
import { listen } from '../core/listen.ts';
import { DiscoveryServer } from './server/discovery-server.ts';
import { adsServiceDefinition, bindServer, createGrpcServer } from './server/grpc-server.ts';
import type { ControlPlaneMetrics } from './server/metrics.ts';
import { createMetrics } from './server/metrics.ts';
import { pilotFeatures } from './features.ts';
import { jwksInUse, jwksResolver } from './translate/security/jwks-resolver.ts';

export interface ControlPlaneOptions {
  store: ConfigStore;
  mesh?: MeshConfig;
  /** Keeps allocated VIPs (and, with the CA, keys) across restarts; none = in memory. */
  stateDir?: string;
  /** Directory of `credentialName` secrets (`<dir>/<name>/tls.crt|tls.key|ca.crt`); default `<stateDir>/credentials`. */
  credentialsDir?: string;
  credentials?: CredentialSource;
  host?: string;
  /** 0 picks a free port. Defaults: 15010 and 15014. */
  xdsPort?: number;
  monitoringPort?: number;
  /** Writes `{"xds":n,"monitoring":n}` once both listen. */
  portsFile?: string;
  log?: Logger;
  /** The push debounce (DiscoveryServerOptions); default: PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX and PILOT_ENABLE_EDS_DEBOUNCE from the environment. */
  debounceMs?: number;
  debounceMaxMs?: number;
  edsDebounce?: boolean;
  workloadGraceMs?: number;
  /** In-flight (un-ACKed) response bytes above which pushes queue (default 128 MiB). */
  maxInflightBytes?: number;
  /** Istio's ISTIO_WORKLOAD_ENTRY_VALIDATE_IDENTITY (default true): see DiscoveryServerOptions. */
  validateWorkloadEntryIdentity?: boolean;
  /** Current number of rejected configuration problems (exported as a metric). */
  configErrors?: () => number;
  /** How MeshNetworks gateways given by hostname are resolved (default: the system's DNS servers). */
  gatewayDns?: GatewayDnsOptions;
}

export interface ControlPlane {
  readonly id: string;
  readonly ports: { xds: number; monitoring: number; xdsTls?: number };
  readonly discovery: DiscoveryServer;
  readonly metrics: ControlPlaneMetrics;
  readonly grpcServer: grpc.Server;
  /** Serves the same gRPC services (ADS, CA) over TLS on another port; returns the bound port. */
  bindTls(port: number, credentials: grpc.ServerCredentials): Promise<number>;
  stop(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? silentLogger;
  // A malformed feature switch stops the start here, before anything listens.
  const features = pilotFeatures();
  const host = opts.host ?? '127.0.0.1';
  const mesh = opts.mesh ?? DEFAULT_MESH_CONFIG;
  if (opts.stateDir) fs.mkdirSync(opts.stateDir, { recursive: true });
  const credentialsDir = opts.credentialsDir ?? (opts.stateDir ? path.join(opts.stateDir, 'credentials') : undefined);
  const credentials = opts.credentials ?? (credentialsDir ? directoryCredentials(credentialsDir) : undefined);
  const metrics = createMetrics(opts.configErrors);
  const registry = new ServiceRegistry(new VipAllocator(opts.stateDir));
  const debounce = { debounceMs: opts.debounceMs ?? features.debounceAfterMs, debounceMaxMs: opts.debounceMaxMs ?? features.debounceMaxMs, edsDebounce: opts.edsDebounce ?? features.edsDebounce };
  const discovery = new DiscoveryServer({ store: opts.store, mesh, registry, credentials, log: log.child({ component: 'xds' }), metrics, ...debounce, workloadGraceMs: opts.workloadGraceMs, maxInflightBytes: opts.maxInflightBytes, validateWorkloadEntryIdentity: opts.validateWorkloadEntryIdentity, gatewayDns: opts.gatewayDns });
  discovery.start();
  // Keys the control plane fetched for RequestAuthentication arrived or changed: push them.
  const offJwks = jwksResolver.onChange(() => discovery.requestPush('jwks'));
  // Only what some RequestAuthentication still names keeps being fetched.
  const offJwksUse = jwksResolver.trackUse(() => jwksInUse(opts.store.list()));
  const id = `rig-controlplane-${os.hostname()}-${process.pid}`;

  const grpcServer = createGrpcServer();
  grpcServer.addService(adsServiceDefinition(), { streamAggregatedResources: (call: never) => discovery.handleStream(call) } as never);
  let xds: number;
  try {
    xds = await bindServer(grpcServer, host, opts.xdsPort ?? 15010, grpc.ServerCredentials.createInsecure());
  } catch (err) {
    discovery.stop();
    throw new RigError('MESH_ERR_PORT_IN_USE', `cannot listen for xDS on ${host}:${opts.xdsPort ?? 15010}: ${(err as Error).message} (choose another with --xds-port, 0 = any free port)`);
  }
  const debug: http.Server = createDebugServer({ discovery, metrics, controlPlaneId: id });
  let monitoring: number;
  try {
    monitoring = await listen(debug, host, opts.monitoringPort ?? 15014);
  } catch (err) {
    discovery.stop();
    grpcServer.forceShutdown();
    throw new RigError('MESH_ERR_PORT_IN_USE', `cannot listen for monitoring on ${host}:${opts.monitoringPort ?? 15014}: ${(err as Error).message} (choose another with --monitoring-port, 0 = any free port)`);
  }
  const ports: ControlPlane['ports'] = { xds, monitoring };
  const writePorts = () => {
    if (!opts.portsFile) return;
    const tmp = `${opts.portsFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(ports));
    fs.renameSync(tmp, opts.portsFile);
  };
  writePorts();
  log.info({ xds, monitoring, host, services: discovery.push.services.length, ...debounce, ...(features.http10 ? { PILOT_HTTP10: true } : {}), ...(features.sidecarUseRemoteAddress ? { PILOT_SIDECAR_USE_REMOTE_ADDRESS: true } : {}) }, 'control plane listening');

  return {
    id,
    ports,
    discovery,
    metrics,
    grpcServer,
    async bindTls(port, creds) {
      const bound = await bindServer(grpcServer, host, port, creds);
      ports.xdsTls = bound;
      writePorts();
      return bound;
    },
    async stop() {
      offJwks();
      offJwksUse();
      discovery.stop();
      // Open ADS streams never end by themselves, so there is nothing to wait for. forceShutdown
      // first: after tryShutdown has closed a session, forceShutdown only ends its socket, which
      // stays half-open for ever when the peer is gone (a pod whose network was removed).
      grpcServer.forceShutdown();
      debug.closeAllConnections();
      await new Promise<void>((resolve) => debug.close(() => resolve()));
    },
  };
}
