// Histogram: Envoy's default buckets (a value on a bound counts in that bucket, integers as Envoy
// records them), quantiles, the flush interval, and the /stats renderings of stats-output.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_BUCKETS, Histogram, Stats, SUPPORTED_QUANTILES } from './stats.ts';
import { histogramSummary, statsJson, statsText } from '../admin/stats-output.ts';
import { Issues, Reader } from '../config/reader.ts';
import { readStatsConfig, type StatsConfig } from './stats-config.ts';

const bucketOf = (v: number): number => {
  const h = new Histogram('h');
  h.record(v);
  return h.counts.findIndex((c) => c === 1);
};

test('values land in the first bucket whose bound is >= the value, truncated to an integer; past the last bound in the overflow bucket', () => {
  assert.equal(bucketOf(0), 0);
  assert.equal(bucketOf(0.9), 0, '0.9 ms records as 0');
  assert.equal(bucketOf(1), 1);
  assert.equal(bucketOf(1.5), 1);
  assert.equal(bucketOf(2), 2);
  assert.equal(bucketOf(300), DEFAULT_BUCKETS.indexOf(500));
  assert.equal(bucketOf(1023), DEFAULT_BUCKETS.indexOf(2500), 'the last value of the lookup table');
  assert.equal(bucketOf(1024), DEFAULT_BUCKETS.indexOf(2500), 'the first value past it (binary search)');
  assert.equal(bucketOf(3_600_000), DEFAULT_BUCKETS.length - 1);
  assert.equal(bucketOf(3_600_001), DEFAULT_BUCKETS.length);
  assert.equal(bucketOf(-5), 0, 'a negative duration counts as 0');
  for (let v = 0; v < 5000; v += 7) {
    const want = DEFAULT_BUCKETS.findIndex((b) => b >= v);
    assert.equal(bucketOf(v), want === -1 ? DEFAULT_BUCKETS.length : want, `value ${v}`);
  }
});

test('quantiles: exact extremes, interpolated inside a bucket narrowed to the values seen', () => {
  const h = new Histogram('h');
  assert.ok(h.cumulativeQuantiles().every(Number.isNaN));
  h.record(300);
  assert.deepEqual(h.cumulativeQuantiles(), SUPPORTED_QUANTILES.map(() => 300));
  for (let v = 1; v <= 100; v++) h.record(v);
  const q = h.cumulativeQuantiles();
  assert.equal(q[0], 1);
  assert.equal(q.at(-1), 300);
  for (let i = 1; i < q.length; i++) assert.ok(q[i] >= q[i - 1], 'quantiles ascend');
  assert.equal(h.count, 101);
  assert.equal(h.sum, 5350);
});

test('interval: what the last completed flush interval recorded', () => {
  const h = new Histogram('h');
  h.record(7);
  assert.ok(h.intervalQuantiles().every(Number.isNaN), 'no interval before a flush');
  h.flush();
  assert.equal(h.intervalQuantiles().at(-1), 10, 'the 7 ms value, to its bucket bound');
  h.record(40);
  h.flush();
  assert.equal(h.intervalQuantiles()[0], 25, 'only the 40 ms value (bucket 25..50)');
  h.flush();
  assert.ok(h.intervalQuantiles().every(Number.isNaN), 'an interval without values');
  assert.deepEqual([h.cumulativeQuantiles()[0], h.cumulativeQuantiles().at(-1)], [7, 40]);
});

test('/stats text and JSON render histograms as Envoy', () => {
  const stats = new Stats();
  stats.counter('cluster.a.upstream_rq_total').value = 2;
  const used = stats.histogram('cluster.a.upstream_rq_time');
  used.record(12);
  const unused = stats.histogram('cluster.b.upstream_rq_time');
  assert.equal(histogramSummary(unused), 'No recorded values');
  assert.equal(histogramSummary(used), SUPPORTED_QUANTILES.map((p) => `P${p}(nan,12)`).join(' '));
  assert.equal(statsText(stats.all(), stats.histograms()), `cluster.a.upstream_rq_total: 2\ncluster.a.upstream_rq_time: ${histogramSummary(used)}\ncluster.b.upstream_rq_time: No recorded values\n`);
  assert.deepEqual(statsJson(stats.all(), [used]), {
    stats: [
      { name: 'cluster.a.upstream_rq_total', value: 2 },
      { histograms: { supported_quantiles: SUPPORTED_QUANTILES, computed_quantiles: [{ name: 'cluster.a.upstream_rq_time', values: SUPPORTED_QUANTILES.map(() => ({ interval: null, cumulative: 12 })) }] } },
    ],
  });
  assert.deepEqual(statsJson(stats.all(), []), { stats: [{ name: 'cluster.a.upstream_rq_total', value: 2 }] });
  stats.removePrefix('cluster.a.');
  assert.deepEqual(stats.histograms().map((h) => h.name), ['cluster.b.upstream_rq_time']);
});

const matcher = (stats_matcher: unknown): StatsConfig => {
  const issues = new Issues();
  const c = readStatsConfig(new Reader({ stats_matcher }, 'stats_config', issues))!;
  assert.deepEqual(issues.errors, []);
  return c;
};

test('stats_matcher: a rejected name is never created; its holder counts into a shared null stat nothing lists', () => {
  const stats = new Stats();
  stats.configure(matcher({ inclusion_list: { patterns: [{ prefix: 'cluster.a.' }] } }));
  const kept = stats.counter('cluster.a.upstream_rq_total');
  const c1 = stats.counter('cluster.b.upstream_rq_total');
  const c2 = stats.counter('cluster.c.upstream_rq_total');
  kept.value++;
  c1.value++;
  c2.value += 5;
  assert.equal(kept.value, 1);
  assert.equal(c1, c2, 'one null counter for every rejected name: nothing allocated per name');
  const g = stats.gauge('cluster.b.upstream_rq_active');
  g.value = 3;
  assert.equal(stats.gauge('cluster.c.upstream_rq_active'), g);
  assert.notEqual(g, c1);
  const h = stats.histogram('cluster.b.upstream_rq_time');
  h.record(5);
  assert.equal(h.count, 0);
  assert.equal(stats.histogram('cluster.c.upstream_rq_time'), h);
  assert.deepEqual(stats.all().map((s) => s.name), ['cluster.a.upstream_rq_total']);
  assert.deepEqual(stats.histograms(), []);
});

test('stats_matcher: a stateGauge the proxy reads back stays live when rejected, listed nowhere but liveGauges()', () => {
  const stats = new Stats();
  stats.configure(matcher({ reject_all: true }));
  const active = stats.stateGauge('http.in.downstream_rq_active');
  active.value++;
  assert.equal(active.value, 1);
  assert.equal(stats.stateGauge('http.in.downstream_rq_active'), active, 'one per name, across config updates');
  assert.deepEqual(stats.all(), []);
  assert.deepEqual([...stats.liveGauges()].map((s) => `${s.name}=${s.value}`), ['http.in.downstream_rq_active=1']);
  stats.removePrefix('http.in.');
  assert.deepEqual([...stats.liveGauges()], []);
});

test('stats_matcher: stats made before configure() that it rejects are dropped; socket byte counters follow each name', () => {
  const stats = new Stats();
  stats.counter('runtime.load_success').value = 1;
  stats.counter('server.live').value = 1;
  stats.configure(matcher({ exclusion_list: { patterns: [{ prefix: 'runtime.' }, { suffix: '_tx_bytes_total' }, { prefix: 'cluster.none.' }] } }));
  assert.deepEqual(stats.all().map((s) => s.name), ['server.live']);
  stats.socketBytes('cluster.a.');
  assert.deepEqual(stats.all().map((s) => s.name), ['cluster.a.upstream_cx_rx_bytes_total', 'server.live']);
  const none = stats.socketBytes('cluster.none.');
  assert.equal(stats.socketBytes('cluster.none.x.'), none, 'one shared object when both names are rejected');
  assert.equal(none.rx.value + none.tx.value, 0);
});
