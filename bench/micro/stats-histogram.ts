// Micro-benchmark of Envoy histogram recording (not part of the tests):
//   node bench/micro/stats-histogram.ts
// Histogram.record() for request-like values (mostly under 1 s, the table lookup) and for
// connection lengths (past the table: the binary search), recordSince() (adds performance.now()),
// a counter increment for comparison, and the cost of rendering /stats quantiles. Prints ns/op (mitata).
import { bench, do_not_optimize, run, summary } from 'mitata';
import { Stats } from '../../src/proxy/stats/stats.ts';
import { histogramSummary } from '../../src/proxy/admin/stats-output.ts';

const stats = new Stats();
const h = stats.histogram('cluster.reviews.upstream_rq_time');
const long = stats.histogram('cluster.reviews.upstream_cx_length_ms');
const counter = stats.counter('cluster.reviews.upstream_rq_total');
// 1024 pseudo-random latencies: 0.2..800 ms (request times), 1 s..2 h (connection lengths).
const short = Float64Array.from({ length: 1024 }, (_, i) => 0.2 + ((i * 2654435761) % 8000) / 10);
const longs = Float64Array.from({ length: 1024 }, (_, i) => 1000 + ((i * 2654435761) % 7_200_000));
let k = 0;
const t0 = performance.now();

summary(() => {
  bench('counter .value++', () => {
    counter.value++;
  });
  bench('Histogram.record (request times, table)', () => {
    h.record(short[k++ & 1023]);
  });
  bench('Histogram.record (connection lengths, binary search)', () => {
    long.record(longs[k++ & 1023]);
  });
  bench('Histogram.recordSince (one performance.now() included)', () => {
    h.recordSince(t0);
  });
});
bench('/stats summary of one histogram (20 buckets, 10 quantiles x 2)', () => do_not_optimize(histogramSummary(h)));

await run();
