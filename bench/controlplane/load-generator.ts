// A load-generator process for the control plane scale benchmark: runs many simulated sidecars
// (ADS streams that behave like Envoy: CDS+LDS wildcard, EDS and RDS by name, ACK everything once
// each response is fully received; sim-ads-stream.ts) and reports to its parent when all are in
// sync and when each ACKs a new route version.
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import { SimAdsStream, encodeNames } from './sim-ads-stream.ts';
import type { Envelope } from './sim-ads-stream.ts';

interface Job {
  address: string;
  from: number;
  count: number;
  services: number;
  namespaces: number;
  port: number;
  /** Proxies this process connects per second (pods starting), 0 = all at once. */
  rate: number;
  /** A Sidecar limits every proxy to its own namespace: it watches the endpoints of those services only. */
  scoped: boolean;
}

/** Envoy's default HTTP/2 initial stream and connection window (Http2ProtocolOptions). */
const ENVOY_WINDOW = 256 << 20;

/** grpc-js's connect timeout (the simulated proxies used grpc-js before). */
const CONNECT_TIMEOUT_MS = 20_000;

const job = JSON.parse(process.argv[2]) as Job;
const send = (msg: unknown) => process.send?.(msg);

function serviceHost(i: number, namespaces: number): string {
  return `svc-${i}.ns-${i % namespaces}.svc.cluster.local`;
}

/** The clusters a proxy of namespace `ns` watches (Envoy asks EDS for the EDS clusters it got), as names and as encoded for ACKs. */
const edsByNamespace = new Map<number, { names: string[]; encoded: Buffer }>();
function edsNamesOf(ns: number): { names: string[]; encoded: Buffer } {
  let eds = edsByNamespace.get(ns);
  if (!eds) {
    const names: string[] = [];
    for (let i = 0; i < job.services; i++) if (!job.scoped || i % job.namespaces === ns) names.push(`outbound|${job.port}||${serviceHost(i, job.namespaces)}`);
    eds = { names, encoded: encodeNames(names) };
    edsByNamespace.set(ns, eds);
  }
  return eds;
}
const rdsNames = [String(job.port)];
const rdsEncoded = encodeNames(rdsNames);

/**
 * ACK times not yet reported: sent to the parent in one message per event-loop turn (one IPC
 * message per proxy cost the generator ~10% of its CPU while 1000 proxies took a route push).
 */
let ackTimes: number[] = [];
function reportAck(at: number): void {
  if (!ackTimes.length) {
    setImmediate(() => {
      send({ type: 'acked', times: ackTimes });
      ackTimes = [];
    });
  }
  ackTimes.push(at);
}

const clients = new Map<number, SimAdsStream>();
/** Route version each simulated proxy holds. */
const routeVersion = new Map<number, string>();
/** Route version each proxy held when the parent said "watch"; undefined = not watching. */
let baseline: Map<number, string> | undefined;
let lastResponseAt = Date.now();
let stopping = false;
let reconnects = 0;
/** Why streams ended (gRPC status and details), for the harness's progress report. */
const endReasons = new Map<string, number>();

/** Connects proxy k; like Envoy, reconnects after a random backoff when the stream fails (e.g. connect timeout under a connection storm). */
function connect(k: number): void {
  const svc = k % job.services;
  const ns = `ns-${svc % job.namespaces}`;
  const eds = edsNamesOf(svc % job.namespaces);
  const ip = `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
  // Each simulated sidecar has its own HTTP/2 connection with Envoy's default 256 MiB stream and connection windows.
  const c = new SimAdsStream(
    job.address,
    {
      id: `sidecar~${ip}~svc-${svc}-${k}.${ns}~${ns}.svc.cluster.local`,
      metadata: { NAMESPACE: ns, LABELS: { app: `svc-${svc}` }, SERVICE_ACCOUNT: 'default', INSTANCE_IPS: ip, INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: [{ port: job.port, name: 'http' }], ISTIO_VERSION: 'bench' },
    },
    { window: ENVOY_WINDOW, connectTimeoutMs: CONNECT_TIMEOUT_MS },
  );
  clients.set(k, c);
  c.onResponse = (r: Envelope) => {
    lastResponseAt = Date.now();
    c.ack(r, r.type_url === ENDPOINT_TYPE ? eds.encoded : r.type_url === ROUTE_TYPE ? rdsEncoded : undefined);
    if (r.type_url !== ROUTE_TYPE) return;
    routeVersion.set(k, r.version_info);
    const before = baseline?.get(k);
    if (baseline && before !== undefined && before !== r.version_info) {
      baseline.delete(k);
      reportAck(Date.now());
    }
  };
  c.subscribe(CLUSTER_TYPE);
  c.subscribe(ENDPOINT_TYPE, eds.names);
  c.subscribe(LISTENER_TYPE);
  c.subscribe(ROUTE_TYPE, rdsNames);
  void c.ended.then((st) => {
    if (stopping) return;
    const why = `${st.code} ${st.details.replace(/\s*\(.*$/s, '')}`;
    endReasons.set(why, (endReasons.get(why) ?? 0) + 1);
    c.close();
    reconnects++;
    setTimeout(() => connect(k), 500 + Math.random() * 1000);
  });
}

// Proxies come up at a steady rate, as pods start; a burst of thousands of simultaneous connects
// overflows the accept backlog and measures the storm rather than the control plane.
let next = job.from;
const tick = () => {
  const batch = job.rate > 0 ? Math.max(1, Math.round(job.rate / 10)) : job.count;
  for (const end = Math.min(job.from + job.count, next + batch); next < end; next++) connect(next);
  if (next < job.from + job.count) setTimeout(tick, 100);
};
tick();

process.on('message', (m: { type: string }) => {
  if (m.type === 'status') send({ type: 'status', withRoutes: routeVersion.size, quietMs: Date.now() - lastResponseAt, reconnects, endReasons: Object.fromEntries(endReasons) });
  // From now on, report each client's first ACK of a route version other than the one it holds.
  if (m.type === 'watch') {
    baseline = new Map(routeVersion);
    send({ type: 'watching' });
  }
  if (m.type === 'stop') {
    stopping = true;
    for (const c of clients.values()) c.close();
    process.exit(0);
  }
});
