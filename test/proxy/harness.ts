// In-process proxy harness for tests: a ProxyRuntime fed through apply() (as the xDS client does)
// or addStatic(), upstream test servers on 127.0.0.1:0, and a small HTTP client.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import type { StreamInfo } from '../../src/proxy/stream-info.ts';

export { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE };

export const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

export function addr(port: number, address = '127.0.0.1'): EnvoyJson {
  return { socket_address: { address, port_value: port } };
}

/** A listener on 127.0.0.1:0 with an HCM using RDS `routeName` (or an inline route_config). */
export function httpListener(name: string, route: string | EnvoyJson, hcmExtra: EnvoyJson = {}, listenerExtra: EnvoyJson = {}): EnvoyJson {
  const routeSpec = typeof route === 'string' ? { rds: { route_config_name: route, config_source: { ads: {} } } } : { route_config: route };
  return {
    name,
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM, stat_prefix: name, ...routeSpec, http_filters: [ROUTER], ...hcmExtra } }] }],
    ...listenerExtra,
  };
}

export function staticCluster(name: string, ports: number[], extra: EnvoyJson = {}): EnvoyJson {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: addr(p) } })) }] },
    ...extra,
  };
}

export function routeConfig(name: string, routes: EnvoyJson[], domains = ['*'], extra: EnvoyJson = {}): EnvoyJson {
  return { name, virtual_hosts: [{ name: 'vh', domains, routes }], ...extra };
}

export function byName(list: EnvoyJson[]): Map<string, EnvoyJson> {
  return new Map(list.map((r) => [String(r.name ?? r.cluster_name), r]));
}

export interface Harness {
  rt: ProxyRuntime;
  streams: StreamInfo[];
  port(listener: string): number;
  apply(typeUrl: string, list: EnvoyJson[]): string[];
  close(): void;
}

export async function startRuntime(): Promise<Harness> {
  const rt = new ProxyRuntime({ node: { id: 'sidecar~127.0.0.1~test.default~default.svc.cluster.local', cluster: 'test', metadata: {} } });
  const streams: StreamInfo[] = [];
  rt.observers.push((info) => streams.push(info));
  return {
    rt,
    streams,
    port: (l) => rt.listeners.get(l)?.boundPort ?? 0,
    apply: (t, list) => rt.apply(t, byName(list)),
    close: () => rt.stop(),
  };
}

/** startRuntime() for one test: when it ends, the runtime is closed, then `upstreams` in order. */
export async function startTestRuntime(t: { after(fn: () => unknown): void }, upstreams: { close(): Promise<void> }[] = []): Promise<Harness> {
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    for (const up of upstreams) await up.close();
  });
  return h;
}

/** Applies CDS, then LDS + RDS, and waits for the listeners to bind. */
export async function configure(h: Harness, cfg: { clusters?: EnvoyJson[]; listeners?: EnvoyJson[]; routes?: EnvoyJson[]; endpoints?: EnvoyJson[] }): Promise<void> {
  const errs = [
    ...(cfg.clusters ? h.apply(CLUSTER_TYPE, cfg.clusters) : []),
    ...(cfg.endpoints ? h.apply(ENDPOINT_TYPE, cfg.endpoints) : []),
    ...(cfg.routes ? h.apply(ROUTE_TYPE, cfg.routes) : []),
    ...(cfg.listeners ? h.apply(LISTENER_TYPE, cfg.listeners) : []),
  ];
  if (errs.length) throw new Error('config rejected:\n' + errs.join('\n'));
  await h.rt.settled();
}

export interface Echo {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  server: string;
}

export interface Upstream {
  port: number;
  requests: Echo[];
  connections: number;
  close(): Promise<void>;
}

/** An HTTP/1.1 upstream answering JSON echoes; `handler` may take over a request. */
export async function startUpstream(name: string, handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => boolean | void): Promise<Upstream> {
  const up: Upstream = { port: 0, requests: [], connections: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const echo = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, server: name };
      up.requests.push(echo);
      if (handler?.(req, res, body)) return;
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
      res.end(JSON.stringify(echo));
    });
  });
  server.on('connection', () => up.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as AddressInfo).port;
  up.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return up;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json<T = Echo>(): T;
}

export function request(port: number, opts: { path?: string; method?: string; headers?: http.OutgoingHttpHeaders; body?: string; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: opts.path ?? '/', method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A port nothing listens on (a refusing peer). */
export { freePort as deadPort } from '../../src/local/ports.ts';
