// The benchmark's cases: what runs between the load generator and the upstream. Every case
// starts its own processes (upstream and proxies pinned to the server core) and reports n/a
// with a reason when it cannot run at this commit, never a made-up figure.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startNginxProxy, startNginxUpstream } from '../servers/nginx.ts';
import { startHaproxy } from '../servers/haproxy.ts';
import { startNodeForwarder } from '../servers/node-forwarder.ts';
import { startRigProxy } from '../servers/rig-proxy.ts';
import { startGrpcUpstream } from '../servers/grpc-upstream.ts';
import { makeMeshCerts } from '../servers/mtls-certs.ts';
import { startOtlpSink } from '../servers/otlp-sink.ts';
import type { Server } from '../servers/server.ts';
import type { LoadProtocol } from '../load/open-loop.ts';
import { rigSourceRoot } from '../servers/rig-proxy.ts';

export interface Topology {
  /** Where the load generator connects. */
  entryPort: number;
  /** Every process of the case, upstream first, in start order. */
  servers: Server[];
}

export interface CaseContext {
  serverCore: number;
  /** Where helpers outside the pod (a trace collector) run: with the load generator. */
  loadCore: number;
  /** Extra node flags for every rig proxy of the case (a profile, for example). */
  rigNodeFlags?: string[];
  /** The rig proxy of this role runs under a launcher, with more node flags (callgrind: bench/profile/instructions.ts). */
  rigLaunched?: { role: Server['role']; launcher: string[]; nodeFlags: string[] };
}

export interface BenchCase {
  id: string;
  title: string;
  protocol: LoadProtocol;
  proxy: 'none' | 'rig' | 'haproxy' | 'nginx' | 'node';
  hops: 0 | 1 | 2;
  /** Why the case cannot run at this commit, or null. */
  unavailable(): string | null;
  /** When the probe through a started topology fails: n/a with this reason instead of a failure. */
  naWhenProbeFails?: string;
  start(ctx: CaseContext, started: Server[]): Promise<Topology>;
}

function rigMissing(): string | null {
  const table = readFileSync(path.join(rigSourceRoot(), 'src/cli/commands/index.ts'), 'utf8');
  return /name: 'proxy'/.test(table) ? null : '`rig proxy` is not in this commit yet (issue 4)';
}

const always = () => null;

/** Starts servers in order, recording each in `started` so the caller can stop them on failure. */
async function chain(started: Server[], ...steps: ((prevPort: number) => Promise<Server>)[]): Promise<Topology> {
  let port = 0;
  for (const step of steps) {
    const s = await step(port);
    started.push(s);
    port = s.port;
  }
  return { entryPort: port, servers: started };
}

/** How the case's rig proxy of this role runs: node flags and launcher. */
function rigRun(ctx: CaseContext, role: Server['role']): { nodeFlags?: string[]; launcher?: string[] } {
  const l = ctx.rigLaunched?.role === role ? ctx.rigLaunched : undefined;
  return l ? { nodeFlags: [...(ctx.rigNodeFlags ?? []), ...l.nodeFlags], launcher: l.launcher } : { nodeFlags: ctx.rigNodeFlags };
}

const rig = (ctx: CaseContext, name: string, role: Server['role'], http2 = false) => (up: number) =>
  startRigProxy({ name, role, core: ctx.serverCore, upstreamPort: up, upstreamHttp2: http2, ...rigRun(ctx, role) });

export const CASES: BenchCase[] = [
  {
    id: 'direct',
    title: 'direct (client → nginx upstream)',
    protocol: 'h1',
    proxy: 'none',
    hops: 0,
    unavailable: always,
    start: (ctx, s) => chain(s, () => startNginxUpstream({ core: ctx.serverCore })),
  },
  {
    id: 'rig-1hop',
    title: 'rig proxy, one hop',
    protocol: 'h1',
    proxy: 'rig',
    hops: 1,
    unavailable: rigMissing,
    start: (ctx, s) => chain(s, () => startNginxUpstream({ core: ctx.serverCore }), rig(ctx, 'rig-proxy', 'proxy')),
  },
  {
    id: 'rig-2hop',
    title: 'rig proxy, two hops (client sidecar → server sidecar), plaintext',
    protocol: 'h1',
    proxy: 'rig',
    hops: 2,
    unavailable: rigMissing,
    start: (ctx, s) =>
      chain(s, () => startNginxUpstream({ core: ctx.serverCore }), rig(ctx, 'rig-server-proxy', 'server-proxy'), rig(ctx, 'rig-client-proxy', 'client-proxy')),
  },
  {
    id: 'rig-2hop-mtls',
    title: 'rig proxy, two hops, mTLS between the sidecars',
    protocol: 'h1',
    proxy: 'rig',
    hops: 2,
    unavailable: rigMissing,
    start: (ctx, s) => {
      const { client, server } = makeMeshCerts();
      return chain(
        s,
        () => startNginxUpstream({ core: ctx.serverCore }),
        (up) => startRigProxy({ name: 'rig-server-proxy', role: 'server-proxy', core: ctx.serverCore, upstreamPort: up, ...rigRun(ctx, 'server-proxy'), downstreamTls: { own: server, peer: client.spiffe } }),
        (up) => startRigProxy({ name: 'rig-client-proxy', role: 'client-proxy', core: ctx.serverCore, upstreamPort: up, ...rigRun(ctx, 'client-proxy'), upstreamTls: { own: client, peer: server.spiffe } }),
      );
    },
  },
  {
    id: 'haproxy-1hop',
    title: 'HAProxy, one hop',
    protocol: 'h1',
    proxy: 'haproxy',
    hops: 1,
    unavailable: always,
    start: (ctx, s) =>
      chain(s, () => startNginxUpstream({ core: ctx.serverCore }), (up) => startHaproxy({ name: 'haproxy', role: 'proxy', core: ctx.serverCore, upstreamPort: up })),
  },
  {
    id: 'haproxy-2hop',
    title: 'HAProxy, two hops',
    protocol: 'h1',
    proxy: 'haproxy',
    hops: 2,
    unavailable: always,
    start: (ctx, s) =>
      chain(
        s,
        () => startNginxUpstream({ core: ctx.serverCore }),
        (up) => startHaproxy({ name: 'haproxy-server', role: 'server-proxy', core: ctx.serverCore, upstreamPort: up }),
        (up) => startHaproxy({ name: 'haproxy-client', role: 'client-proxy', core: ctx.serverCore, upstreamPort: up }),
      ),
  },
  {
    id: 'nginx-1hop',
    title: 'nginx as proxy, one hop',
    protocol: 'h1',
    proxy: 'nginx',
    hops: 1,
    unavailable: always,
    start: (ctx, s) => chain(s, () => startNginxUpstream({ core: ctx.serverCore }), (up) => startNginxProxy({ core: ctx.serverCore, upstreamPort: up })),
  },
  {
    id: 'node-forward-1hop',
    title: 'bare Node.js byte forwarder, one hop (no HTTP: the floor of any proxy in Node\'s event loop)',
    protocol: 'h1',
    proxy: 'node',
    hops: 1,
    unavailable: always,
    start: (ctx, s) => chain(s, () => startNginxUpstream({ core: ctx.serverCore }), (up) => startNodeForwarder({ core: ctx.serverCore, upstreamPort: up })),
  },
  {
    id: 'rig-1hop-telemetry-on',
    title: 'rig proxy, one hop, telemetry on (metrics, 1% tracing)',
    protocol: 'h1',
    proxy: 'rig',
    hops: 1,
    unavailable: rigMissing,
    start: async (ctx, s) => {
      const sink = await startOtlpSink({ core: ctx.loadCore });
      s.push(sink);
      const up = await startNginxUpstream({ core: ctx.serverCore });
      s.push(up);
      const proxy = await startRigProxy({ name: 'rig-proxy', role: 'proxy', core: ctx.serverCore, upstreamPort: up.port, ...rigRun(ctx, 'proxy'), telemetryCollectorPort: sink.port });
      s.push(proxy);
      return { entryPort: proxy.port, servers: s };
    },
  },
  {
    id: 'h2-direct',
    title: 'HTTP/2 direct (client → nginx h2c upstream)',
    protocol: 'h2',
    proxy: 'none',
    hops: 0,
    unavailable: always,
    start: (ctx, s) => chain(s, () => startNginxUpstream({ core: ctx.serverCore, http2: true })),
  },
  {
    id: 'h2-rig-1hop',
    title: 'HTTP/2 through rig proxy, one hop (h2c both sides)',
    protocol: 'h2',
    proxy: 'rig',
    hops: 1,
    unavailable: rigMissing,
    naWhenProbeFails: 'rig proxy did not forward an HTTP/2 (h2c) request',
    start: (ctx, s) => chain(s, () => startNginxUpstream({ core: ctx.serverCore, http2: true }), rig(ctx, 'rig-proxy', 'proxy', true)),
  },
  {
    id: 'grpc-direct',
    title: 'gRPC direct (grpc-js client → grpc-js server)',
    protocol: 'grpc',
    proxy: 'none',
    hops: 0,
    unavailable: always,
    start: (ctx, s) => chain(s, () => startGrpcUpstream({ core: ctx.serverCore })),
  },
  {
    id: 'grpc-rig-1hop',
    title: 'gRPC through rig proxy, one hop',
    protocol: 'grpc',
    proxy: 'rig',
    hops: 1,
    unavailable: rigMissing,
    naWhenProbeFails: 'rig proxy did not forward a gRPC call',
    start: (ctx, s) => chain(s, () => startGrpcUpstream({ core: ctx.serverCore }), rig(ctx, 'rig-proxy', 'proxy', true)),
  },
];
