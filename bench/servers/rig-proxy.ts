// `rig proxy -c bootstrap.yaml` with a static Envoy v3 bootstrap: one listener (HTTP connection
// manager, route "/" to one cluster) in front of one STATIC endpoint.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { scratchDir, startServer, type Server } from './server.ts';
import { freePort } from '../lib/ports.ts';
import { realtimeNodeFlags } from '../lib/process-group.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const RIG_MAIN = path.join(REPO_ROOT, 'src/cli/main.ts');

export interface RigProxyOptions {
  name: string;
  role: Server['role'];
  core: number;
  upstreamPort: number;
  /** Talk HTTP/2 (h2c) to the upstream, for HTTP/2 and gRPC cases. */
  upstreamHttp2?: boolean;
  /** Extra node flags, e.g. --cpu-prof for a profile. */
  nodeFlags?: string[];
  /** Extra `rig proxy` flags. */
  rigFlags?: string[];
}

export function rigBootstrap(listenPort: number, adminPort: number, upstreamPort: number, upstreamHttp2: boolean): object {
  const socket = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
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
                    http_filters: [
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
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
        },
      ],
    },
  };
}

export async function startRigProxy(opts: RigProxyOptions): Promise<Server> {
  const port = await freePort();
  const adminPort = await freePort();
  const dir = scratchDir(opts.name);
  const conf = path.join(dir, 'bootstrap.yaml');
  writeFileSync(conf, stringify(rigBootstrap(port, adminPort, opts.upstreamPort, opts.upstreamHttp2 ?? false)));
  return startServer(
    {
      name: opts.name,
      core: opts.core,
      command: process.execPath,
      // Readiness would default to Istio's fixed 15021: let the proxy pick a free port.
      args: [...realtimeNodeFlags(), ...(opts.nodeFlags ?? []), RIG_MAIN, 'proxy', '-c', conf, '--ready-port', '0', '--log-level', 'warn', ...(opts.rigFlags ?? [])],
      cwd: dir,
    },
    opts.role,
    port,
    30_000,
  );
}
