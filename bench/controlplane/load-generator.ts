// A load-generator process for the control plane scale benchmark: runs many simulated sidecars
// (ADS clients that behave like Envoy: CDS+LDS wildcard, EDS and RDS by name, ACK everything)
// and reports to its parent when all are in sync and when each ACKs a new route version.
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import { AdsClient } from '../../src/xds/ads-client.ts';
import type { AdsResponse } from '../../src/xds/ads-client.ts';

interface Job {
  address: string;
  from: number;
  count: number;
  services: number;
  namespaces: number;
  port: number;
}

const job = JSON.parse(process.argv[2]) as Job;
const send = (msg: unknown) => process.send?.(msg);

function serviceHost(i: number, namespaces: number): string {
  return `svc-${i}.ns-${i % namespaces}.svc.cluster.local`;
}

const edsNames: string[] = [];
for (let i = 0; i < job.services; i++) edsNames.push(`outbound|${job.port}||${serviceHost(i, job.namespaces)}`);
const rdsNames = [String(job.port)];

const clients: AdsClient[] = [];
const routeVersion = new Map<AdsClient, string>();
/** Route version each client held when the parent said "watch"; undefined = not watching. */
let baseline: Map<AdsClient, string> | undefined;
let lastResponseAt = Date.now();

for (let k = job.from; k < job.from + job.count; k++) {
  const svc = k % job.services;
  const ns = `ns-${svc % job.namespaces}`;
  const ip = `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
  const c = new AdsClient(
    job.address,
    {
      id: `sidecar~${ip}~svc-${svc}-${k}.${ns}~${ns}.svc.cluster.local`,
      metadata: { NAMESPACE: ns, LABELS: { app: `svc-${svc}` }, SERVICE_ACCOUNT: 'default', INSTANCE_IPS: ip, INTERCEPTION_MODE: 'REDIRECT', RIG_WORKLOAD_PORTS: [{ port: job.port, name: 'http' }], ISTIO_VERSION: 'bench' },
    },
    { decode: false },
  );
  clients.push(c);
  c.onResponse = (r: AdsResponse) => {
    lastResponseAt = Date.now();
    const names = r.type_url === ENDPOINT_TYPE ? edsNames : r.type_url === ROUTE_TYPE ? rdsNames : undefined;
    c.ack(r, names);
    if (r.type_url !== ROUTE_TYPE) return;
    routeVersion.set(c, r.version_info);
    const before = baseline?.get(c);
    if (baseline && before !== undefined && before !== r.version_info) {
      baseline.delete(c);
      send({ type: 'acked', at: Date.now() });
    }
  };
  c.subscribe(CLUSTER_TYPE);
  c.subscribe(ENDPOINT_TYPE, edsNames);
  c.subscribe(LISTENER_TYPE);
  c.subscribe(ROUTE_TYPE, rdsNames);
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'status') send({ type: 'status', withRoutes: routeVersion.size, quietMs: Date.now() - lastResponseAt });
  // From now on, report each client's first ACK of a route version other than the one it holds.
  if (m.type === 'watch') {
    baseline = new Map(routeVersion);
    send({ type: 'watching' });
  }
  if (m.type === 'stop') {
    for (const c of clients) c.close();
    process.exit(0);
  }
});
