// Micro-benchmark of the istio.stats hot path (not part of the tests):
//   node bench/micro/istio-stats.ts
// recordHttp() with its nested-map cache of metric cells (what a request pays), against
// prom-client children cached the same way (prom-client re-hashes the ~25 labels on every
// inc()/observe(): the reason for metric-families.ts), plus the cached x-envoy-peer-metadata
// decode and the exposition of a scrape. Prints ns/op (mitata).
import { bench, do_not_optimize, run, summary } from 'mitata';
import { Counter, Histogram, Registry } from 'prom-client';
import { Stats } from '../../src/proxy/stats/stats.ts';
import { newStreamInfo } from '../../src/proxy/stream-info.ts';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { ProxyTelemetry } from '../../src/proxy/telemetry/proxy-telemetry.ts';
import { compileStatsConfig } from '../../src/proxy/telemetry/stats-config.ts';
import { recordHttp } from '../../src/proxy/telemetry/stats-recorder.ts';
import { decodePeerHeader, localPeer, peerLabels } from '../../src/proxy/telemetry/peer-metadata.ts';
import { DURATION_BUCKETS, HTTP_LABELS, SIZE_BUCKETS, httpResponseLabels, peerLabelValues, serviceOfCluster } from '../../src/proxy/telemetry/istio-metrics.ts';
import type { ProxyContext } from '../../src/proxy/context.ts';
import type { RequestHead } from '../../src/proxy/filters/filter.ts';

const node = (name: string, app: string) => ({ id: `sidecar~10.0.0.1~${name}-0.default~default.svc.cluster.local`, cluster: name, metadata: { NAMESPACE: 'default', WORKLOAD_NAME: name, LABELS: { app, version: 'v1' }, SERVICE_ACCOUNT: app, CLUSTER_ID: 'Kubernetes' } });
const stats = new Stats();
const telemetry = new ProxyTelemetry({ node: node('productpage-v1', 'productpage'), stats, clusters: undefined } as unknown as ProxyContext);
const value = { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: { reporter: 'CLIENT', rigging_trust_domain: 'cluster.local' } };
const cfg = compileStatsConfig(new Reader(value, 'istio.stats', new Issues()), 'outbound', telemetry);

const peerHeader = localPeer(node('reviews-v1', 'reviews')).header;
const peer = decodePeerHeader(peerHeader)!;
const head: RequestHead = { method: 'GET', path: '/reviews/0', authority: 'reviews:9080', scheme: 'http', headers: {} };
const infos = [200, 200, 200, 503].map((code) => {
  const i = newStreamInfo('outbound', 'HTTP/1.1');
  i.responseCode = code;
  i.upstreamCluster = 'outbound|9080||reviews.default.svc.cluster.local';
  i.upstreamPeer = { metadata: peer.metadata };
  i.bytesSent = 300;
  i.durationMs = 3.2;
  return i;
});

// prom-client, children looked up once per label set as recordHttp does.
const reg = new Registry();
const labelNames = HTTP_LABELS;
const pc = {
  requests: new Counter({ name: 'r', help: 'r', labelNames, registers: [reg] }),
  duration: new Histogram({ name: 'd', help: 'd', labelNames, buckets: DURATION_BUCKETS, registers: [reg] }),
  requestBytes: new Histogram({ name: 'q', help: 'q', labelNames, buckets: SIZE_BUCKETS, registers: [reg] }),
  responseBytes: new Histogram({ name: 's', help: 's', labelNames, buckets: SIZE_BUCKETS, registers: [reg] }),
};
const children = infos.map((info) => {
  const labels = { ...peerLabelValues('source', telemetry.local.labels, { peer: peerLabels(info.upstreamPeer!.metadata), peerPrincipal: '', localPrincipal: '', service: serviceOfCluster(info.upstreamCluster)! }, false, 'http'), ...httpResponseLabels(info) };
  return { requests: pc.requests.labels(labels), duration: pc.duration.labels(labels), requestBytes: pc.requestBytes.labels(labels), responseBytes: pc.responseBytes.labels(labels) };
});

let k = 0;
summary(() => {
  bench('recordHttp (cached cells, 4 metrics)', () => recordHttp(cfg, infos[k++ & 3], head, undefined));
  bench('prom-client children (cached, 4 metrics)', () => {
    const i = k++ & 3;
    const c = children[i];
    c.requests.inc();
    c.duration.observe(infos[i].durationMs!);
    c.requestBytes.observe(0);
    c.responseBytes.observe(infos[i].bytesSent);
  });
});
bench('decodePeerHeader (cached by value)', () => do_not_optimize(decodePeerHeader(peerHeader)));
bench('scrape: Istio families render() (4 series x 4 metrics)', () => do_not_optimize(telemetry.metrics.render()));
bench('scrape: prom-client registry.metrics() (same series)', async () => do_not_optimize(await reg.metrics()));
await run();
