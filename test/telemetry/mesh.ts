// A small mesh for telemetry tests: explicit-mode sidecars (in-process ProxyRuntimes) fed with
// the control plane's generated config for Services, Telemetry and PeerAuthentication from YAML,
// workload certificates from a test CA (real mTLS between sidecars), applications on 127.0.0.1:0
// and each sidecar's Prometheus endpoint on its own port.
import http from 'node:http';
import net from 'node:net';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import type { MeshConfig } from '../../src/model/mesh-config.ts';
import { parseNode, type Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { createStatsHandler } from '../../src/proxy/telemetry/index.ts';
import { buildPush, parseYaml, rdsNames } from '../xds/fixtures.ts';
import { makePki, sdsSecrets, type TestPki } from '../proxy/certs.ts';
import { byName } from '../proxy/harness.ts';
import { freePort } from '../../src/local/ports.ts';
import { listenLocal } from '../helpers/listen.ts';

export interface WorkloadSpec {
  name: string;
  ns?: string;
  labels: Record<string, string>;
  sa: string;
  /** The application behind the sidecar's inbound port 9080 (default: 200 "ok"). */
  app?: http.RequestListener;
  /** A TCP application instead (port 9080 named "tcp"): called per accepted connection. */
  tcpApp?: (socket: net.Socket) => void;
  /** Explicit-mode upstream ports (`host:port` → a local port of the sidecar, in Sidecar.upstreams). */
  upstreams?: string[];
}

export interface Sidecar {
  readonly spec: WorkloadSpec;
  readonly rt: ProxyRuntime;
  readonly proxy: Proxy;
  /** Sidecar ports: inbound (the mesh calls the workload here), outbound (HTTP proxy for the app), stats. */
  readonly inbound: number;
  readonly outbound: number;
  readonly stats: number;
  readonly app: number;
  /** `host:port` → the sidecar's local port forwarding to it (WorkloadSpec.upstreams). */
  readonly upstreams: Record<string, number>;
}

export interface Mesh {
  readonly sidecars: Record<string, Sidecar>;
  /** The mesh's test CA (certificates for a hand-made peer). */
  readonly pki: TestPki;
  /** Re-generates and applies every sidecar's config (after changing resources or mesh config). */
  close(): Promise<void>;
}

export const SERVICES_YAML = (names: string[], ns = 'default', portName = 'http') =>
  names.map((n) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${n}, namespace: ${ns} }\nspec: { selector: { app: ${n} }, ports: [{ name: ${portName}, port: 9080 }] }\n`).join('---\n');

export async function startMesh(opts: { yaml: string; workloads: WorkloadSpec[]; mesh?: Partial<MeshConfig> }): Promise<Mesh> {
  const servers: net.Server[] = [];
  const runtimes: ProxyRuntime[] = [];
  const tcpConns = new Set<net.Socket>();
  let pki: TestPki | undefined;
  const close = async () => {
    for (const rt of runtimes) rt.stop();
    for (const c of tcpConns) c.destroy();
    for (const s of servers) {
      if (s instanceof http.Server) s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    pki?.cleanup();
  };
  try {
    pki = makePki();
    const nodes: { spec: WorkloadSpec; md: Record<string, unknown>; id: string; app: number; inbound: number; outbound: number; upstreams: Record<string, number> }[] = [];
    for (const w of opts.workloads) {
      const ns = w.ns ?? 'default';
      const appServer = w.tcpApp ? net.createServer(w.tcpApp) : http.createServer(w.app ?? ((_q, s) => s.end('ok')));
      servers.push(appServer);
      if (w.tcpApp) appServer.on('connection', (c: net.Socket) => tcpConns.add(c.once('close', () => tcpConns.delete(c))));
      const app = await listenLocal(appServer);
      const inbound = await freePort();
      const outbound = await freePort();
      const upstreams: Record<string, number> = {};
      for (const u of w.upstreams ?? []) upstreams[u] = await freePort();
      const md = {
        NAMESPACE: ns,
        LABELS: w.labels,
        SERVICE_ACCOUNT: w.sa,
        INSTANCE_IPS: '127.0.0.1',
        WORKLOAD_NAME: w.name,
        CLUSTER_ID: 'Kubernetes',
        MESH_ID: 'cluster.local',
        INTERCEPTION_MODE: 'NONE',
        RIG_WORKLOAD_PORTS: [{ port: 9080, name: w.tcpApp ? 'tcp' : 'http' }],
        RIG_EXPLICIT: { bind: '127.0.0.1', outboundPort: outbound, inboundPorts: { '9080': inbound }, appPorts: { '9080': app }, upstreamPorts: upstreams },
      };
      nodes.push({ spec: w, md, id: `sidecar~127.0.0.1~${w.name}-0.${ns}~${ns}.svc.cluster.local`, app, inbound, outbound, upstreams });
    }
    const proxies = nodes.map((n) => parseNode({ id: n.id, metadata: n.md }));
    const push = buildPush(parseYaml(opts.yaml), proxies, { mesh: opts.mesh });
    const sidecars: Record<string, Sidecar> = {};
    for (const [i, n] of nodes.entries()) {
      const proxy = proxies[i];
      const rt = new ProxyRuntime({ node: { id: n.id, cluster: `${n.spec.name}.${proxy.namespace}`, metadata: n.md } });
      runtimes.push(rt);
      const leaf = pki.leaf(n.spec.name, [`URI:spiffe://cluster.local/ns/${proxy.namespace}/sa/${n.spec.sa}`]);
      const clusters = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined);
      const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
      const routes = GENERATORS[ROUTE_TYPE].generate(push, proxy, rdsNames(listeners));
      const endpoints = GENERATORS[ENDPOINT_TYPE].generate(push, proxy, clusters.filter((c) => c.type === 'EDS').map((c) => c.name as string));
      const errors = [
        ...rt.apply(SECRET_TYPE, byName(sdsSecrets(leaf, pki.ca) as EnvoyJson[])),
        ...rt.apply(CLUSTER_TYPE, byName(clusters)),
        ...rt.apply(ENDPOINT_TYPE, byName(endpoints)),
        ...rt.apply(ROUTE_TYPE, byName(routes)),
        ...rt.apply(LISTENER_TYPE, byName(listeners)),
      ];
      if (errors.length) throw new Error(`${n.spec.name}: config rejected:\n${errors.join('\n')}`);
      await rt.settled();
      const statsServer = http.createServer(createStatsHandler(rt.stats));
      servers.push(statsServer);
      const stats = await listenLocal(statsServer);
      sidecars[n.spec.name] = { spec: n.spec, rt, proxy, inbound: n.inbound, outbound: n.outbound, stats, app: n.app, upstreams: n.upstreams };
    }
    return { sidecars, pki, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** GET through a sidecar's outbound HTTP proxy (explicit mode: absolute-form URL). */
export function viaProxy(outbound: number, url: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: outbound, path: url, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function scrape(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/stats/prometheus`);
  return r.text();
}
