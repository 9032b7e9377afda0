// The monitoring port (istiod's 15014): Prometheus /metrics, /ready, and debug endpoints like
// istiod's (/debug/syncz, /debug/config_dump?proxyID=, /debug/adsz, /debug/registryz,
// /debug/endpointz, /debug/configz, /debug/mesh, /debug/push_status; /debug/networkz: the networks,
// their gateways and the endpoints split horizon dropped) that `rig proxy-status` and
// `rig proxy-config` read.
import http from 'node:http';
import { describeResource, writtenKind } from '../../api/index.ts';
import { gatewayApiResourceStatus } from '../../model/gateway-api/resource-status.ts';
import { VERSION } from '../../core/version.ts';
import type { AdsConnection } from './ads-connection.ts';
import { networkDrops } from '../translate/split-horizon.ts';
import { configDump, syncStatus } from './config-dump.ts';
import type { DiscoveryServer } from './discovery-server.ts';
import type { ControlPlaneMetrics } from './metrics.ts';

export interface DebugServerOptions {
  discovery: DiscoveryServer;
  metrics: ControlPlaneMetrics;
  controlPlaneId: string;
}

/** Finds a connection by full node id, `<pod>.<ns>`, or a unique prefix of either. */
export function findConnection(discovery: DiscoveryServer, proxyID: string): AdsConnection | AdsConnection[] | undefined {
  const cons = [...discovery.connections.values()];
  const exact = cons.filter((c) => c.proxy.id === proxyID || c.proxy.name === proxyID);
  if (exact.length) return exact[exact.length - 1];
  const prefix = cons.filter((c) => c.proxy.id.startsWith(proxyID) || c.proxy.name.startsWith(proxyID));
  if (prefix.length === 1) return prefix[0];
  return prefix.length ? prefix : undefined;
}

export function createDebugServer(o: DebugServerOptions): http.Server {
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body, null, 1));
  };
  return http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const d = o.discovery;
      switch (url.pathname) {
        case '/metrics': {
          res.writeHead(200, { 'content-type': o.metrics.registry.contentType });
          res.end(await o.metrics.registry.metrics());
          return;
        }
        case '/ready':
          res.writeHead(200).end('ready\n');
          return;
        case '/version':
          return json(res, 200, { version: VERSION, id: o.controlPlaneId });
        case '/debug/syncz':
          return json(res, 200, [...d.connections.values()].map((c) => syncStatus(c, o.controlPlaneId)));
        case '/debug/adsz':
        case '/debug/connections':
          return json(res, 200, [...d.connections.values()].map((c) => ({ id: c.id, node: c.proxy.id, peer: c.peer, connected_since: c.connectedAt.toISOString(), metadata: c.proxy.metadata, ...(c.health ? { workload_health: c.health } : {}), watches: Object.fromEntries([...c.watches].map(([t, w]) => [t, { names: w.names ?? '*', version_sent: w.versionSent, version_acked: w.versionAcked, nack: w.lastNack, pushes: w.pushes }])) })));
        case '/debug/config_dump': {
          const id = url.searchParams.get('proxyID');
          if (!id) return json(res, 400, { error: 'missing ?proxyID=<node id or pod.namespace>' });
          const found = findConnection(d, id);
          if (!found) return json(res, 404, { error: `no connected proxy matches "${id}"`, proxies: [...d.connections.values()].map((c) => c.proxy.name) });
          if (Array.isArray(found)) return json(res, 409, { error: `"${id}" matches several proxies; be more specific`, proxies: found.map((c) => c.proxy.id) });
          return json(res, 200, configDump(found));
        }
        case '/debug/registryz':
          return json(res, 200, d.push.services);
        case '/debug/endpointz':
          return json(res, 200, Object.fromEntries([...d.push.endpoints].map(([h, ports]) => [h, Object.fromEntries(ports)])));
        case '/debug/configz': {
          // Kinds as users write them (the Gateway API's Gateway is KubernetesGateway inside), with the
          // status Istio would write on Gateway API resources.
          const status = gatewayApiResourceStatus(d.push.resources, d.push.gatewayApiDiagnostics, [...d.connections.values()].map((c) => c.proxy), d.push);
          return json(res, 200, d.push.resources.map((r) => ({ ...r, kind: writtenKind(r.kind), ...(status.has(describeResource(r)) ? { status: status.get(describeResource(r)) } : {}) })));
        }
        case '/debug/mesh':
          return json(res, 200, d.push.mesh);
        case '/debug/networkz': {
          const n = d.push.networks;
          return json(res, 200, { systemNetwork: n.systemNetwork, registryNetwork: n.registryNetwork, gateways: n.gateways, unusable: n.unusable, proxies: Object.fromEntries([...d.connections.values()].map((c) => [c.proxy.id, c.proxy.network])), dropped: Object.fromEntries(networkDrops(d.push)) });
        }
        case '/debug/push_status':
          return json(res, 200, { version: d.push.version, last: d.lastPush, proxies: d.connections.size, memory: process.memoryUsage() });
        default:
          return json(res, 404, { error: `unknown path ${url.pathname}`, paths: ['/metrics', '/ready', '/version', '/debug/syncz', '/debug/adsz', '/debug/config_dump?proxyID=', '/debug/registryz', '/debug/endpointz', '/debug/configz', '/debug/mesh', '/debug/networkz', '/debug/push_status'] });
      }
    })().catch((err: unknown) => json(res, 500, { error: String(err) }));
  });
}
