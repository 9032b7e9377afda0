// `rig proxy -c bootstrap.yaml` with a static Envoy v3 bootstrap: one listener (HTTP connection
// manager, route "/" to one cluster) in front of one STATIC endpoint.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { scratchDir, startServer, type Server } from './server.ts';
import { freePort } from '../lib/ports.ts';
import { realtimeNodeFlags } from '../lib/process-group.ts';
import type { WorkloadCert } from './mtls-certs.ts';
import { REPO_ROOT } from '../lib/source-snapshot.ts';

let rigRoot = REPO_ROOT;

/** Runs `rig proxy` from this source tree (see lib/source-snapshot.ts). */
export function useRigSource(root: string): void {
  rigRoot = root;
}

/** The compiled entry point when the tree has been built (the snapshot is), else the source one (--worktree). */
function rigEntry(): string {
  const compiled = path.join(rigRoot, 'dist/cli/main.js');
  return rigRoot !== REPO_ROOT && existsSync(compiled) ? compiled : path.join(rigRoot, 'src/cli/main.ts');
}

/** The source tree `rig proxy` runs from (file names in profiles are relative to it). */
export function rigSourceRoot(): string {
  return rigRoot;
}

export interface RigProxyOptions {
  name: string;
  role: Server['role'];
  core: number;
  upstreamPort: number;
  /** Talk HTTP/2 (h2c) to the upstream, for HTTP/2 and gRPC cases. */
  upstreamHttp2?: boolean;
  /** Terminate mTLS on the listener with this certificate, requiring the peer's SPIFFE identity. */
  downstreamTls?: { own: WorkloadCert; peer: string };
  /** Originate mTLS to the upstream with this certificate, verifying the peer's SPIFFE identity. */
  upstreamTls?: { own: WorkloadCert; peer: string };
  /** Telemetry on: Istio's request metrics (istio.stats) and OpenTelemetry tracing of 1% of requests to this collector port. */
  telemetryCollectorPort?: number;
  /** Extra node flags, e.g. --cpu-prof for a profile. */
  nodeFlags?: string[];
  /** Extra `rig proxy` flags. */
  rigFlags?: string[];
  /** Run node under this command, e.g. valgrind's (bench/profile/instructions.ts); start-up then takes minutes. */
  launcher?: string[];
}

/** Istio's mTLS between sidecars: own certificate, the mesh root, the peer's SPIFFE URI. */
function tlsSocket(kind: 'Downstream' | 'Upstream', tls: { own: WorkloadCert; peer: string }): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.${kind}TlsContext`,
      ...(kind === 'Downstream' ? { require_client_certificate: true } : { sni: 'outbound_.80_._.bench.default.svc.cluster.local' }),
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: tls.own.cert }, private_key: { filename: tls.own.key } }],
        validation_context: { trusted_ca: { filename: tls.own.ca }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: tls.peer } }] },
      },
    },
  };
}

const socket = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

/** What Istio's sidecar has for telemetry: the istio.stats filter, and a tracer sampling 1%. */
function telemetry(collectorPort: number) {
  return {
    filters: [
      {
        name: 'istio.stats',
        typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: {} },
      },
      ROUTER,
    ],
    tracing: {
      random_sampling: { value: 1 },
      provider: {
        name: 'envoy.tracers.opentelemetry',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
          http_service: { http_uri: { uri: `http://127.0.0.1:${collectorPort}/v1/traces`, cluster: 'bench_collector', timeout: '1s' } },
          service_name: 'bench.default',
        },
      },
    },
    cluster: {
      name: 'bench_collector',
      type: 'STATIC',
      connect_timeout: '1s',
      load_assignment: { cluster_name: 'bench_collector', endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(collectorPort) } }] }] },
    },
  };
}

export function rigBootstrap(
  listenPort: number,
  adminPort: number,
  upstreamPort: number,
  opts: Pick<RigProxyOptions, 'upstreamHttp2' | 'downstreamTls' | 'upstreamTls' | 'telemetryCollectorPort'> = {},
): object {
  const upstreamHttp2 = opts.upstreamHttp2 ?? false;
  const tel = opts.telemetryCollectorPort ? telemetry(opts.telemetryCollectorPort) : undefined;
  return {
    node: { id: 'bench~127.0.0.1~bench.default~default.svc.cluster.local', cluster: 'bench' },
    admin: { address: socket(adminPort) },
    static_resources: {
      listeners: [
        {
          name: 'bench_ingress',
          address: socket(listenPort),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'bench_ingress',
                    codec_type: 'AUTO',
                    route_config: {
                      name: 'bench_route',
                      virtual_hosts: [{ name: 'bench', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'bench_upstream' } }] }],
                    },
                    http_filters: tel ? tel.filters : [ROUTER],
                    ...(tel ? { tracing: tel.tracing } : {}),
                  },
                },
              ],
              ...(opts.downstreamTls ? { transport_socket: tlsSocket('Downstream', opts.downstreamTls) } : {}),
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'bench_upstream',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: 'bench_upstream',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(upstreamPort) } }] }],
          },
          ...(upstreamHttp2
            ? {
                typed_extension_protocol_options: {
                  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
                    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
                    explicit_http_config: { http2_protocol_options: {} },
                  },
                },
              }
            : {}),
          ...(opts.upstreamTls ? { transport_socket: tlsSocket('Upstream', opts.upstreamTls) } : {}),
        },
        ...(tel ? [tel.cluster] : []),
      ],
    },
  };
}

export async function startRigProxy(opts: RigProxyOptions): Promise<Server> {
  const port = await freePort();
  const adminPort = await freePort();
  const dir = scratchDir(opts.name);
  const conf = path.join(dir, 'bootstrap.yaml');
  writeFileSync(conf, stringify(rigBootstrap(port, adminPort, opts.upstreamPort, opts)));
  // Readiness would default to Istio's fixed 15021: let the proxy pick a free port.
  const node = [process.execPath, ...realtimeNodeFlags(), ...(opts.nodeFlags ?? []), rigEntry(), 'proxy', '-c', conf, '--ready-port', '0', '--stats-port', '0', '--log-level', 'warn', ...(opts.rigFlags ?? [])];
  const argv = [...(opts.launcher ?? []), ...node];
  return startServer({ name: opts.name, core: opts.core, command: argv[0], args: argv.slice(1), cwd: dir }, opts.role, port, opts.launcher ? 600_000 : 30_000);
}
