// Envoy's histograms on a `rig proxy -c` process: upstream_rq_time, upstream_cx_connect_ms,
// downstream_rq_time and downstream_cx_length_ms (connection manager and listener) after real
// requests, read from the admin port as /stats (quantile summaries), /stats?format=json (the
// "histograms" element) and /stats/prometheus (_bucket{le}, _sum, _count; checked by promtool
// when the machine has it).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from './harness.ts';
import { DEFAULT_BUCKETS, SUPPORTED_QUANTILES } from '../../src/proxy/stats/stats.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const SLOW_MS = 300;

function listener(name: string, statPrefix: string, routes: unknown[], router: Record<string, unknown> = {}) {
  return {
    name,
    stat_prefix: name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: statPrefix,
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER, ...router } }],
              route_config: { name: `${name}_routes`, virtual_hosts: [{ name: 'all', domains: ['*'], routes }] },
            },
          },
        ],
      },
    ],
  };
}

function cluster(name: string, port: number) {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] } };
}

interface StatsJson {
  stats: ({ name: string; value: number } | { histograms: { supported_quantiles: number[]; computed_quantiles: { name: string; values: { interval: number | null; cumulative: number | null }[] }[] } })[];
}

/** One histogram family of a Prometheus text exposition, checked for structure: buckets per series in `le` order, cumulative, +Inf = _count. */
function promHistogram(text: string, name: string): Map<string, { buckets: [string, number][]; sum: number; count: number }> {
  const lines = text.split('\n');
  const type = lines.indexOf(`# TYPE ${name} histogram`);
  assert.ok(type >= 0, `# TYPE ${name} histogram`);
  assert.equal(lines.filter((l) => l.startsWith(`# TYPE ${name} `)).length, 1, `one TYPE line for ${name}`);
  const series = new Map<string, { buckets: [string, number][]; sum: number; count: number }>();
  for (let i = type + 1; i < lines.length && !lines[i].startsWith('#') && lines[i] !== ''; i++) {
    const m = /^([a-z_]+)\{(.*?)(?:,?le="([^"]+)")?\} (\S+)$/.exec(lines[i]);
    assert.ok(m, `a sample line: ${lines[i]}`);
    const [, metric, labels, le, value] = m;
    let s = series.get(labels);
    if (!s) series.set(labels, (s = { buckets: [], sum: NaN, count: NaN }));
    if (metric === `${name}_bucket`) s.buckets.push([le, Number(value)]);
    else if (metric === `${name}_sum`) s.sum = Number(value);
    else if (metric === `${name}_count`) s.count = Number(value);
    else assert.fail(`a sample of another metric inside ${name}'s family: ${lines[i]}`);
  }
  for (const [labels, s] of series) {
    assert.deepEqual(s.buckets.map(([le]) => le), [...DEFAULT_BUCKETS.map(String), '+Inf'], `${name}{${labels}} buckets`);
    for (let i = 1; i < s.buckets.length; i++) assert.ok(s.buckets[i][1] >= s.buckets[i - 1][1], `${name}{${labels}} buckets are cumulative`);
    assert.equal(s.buckets.at(-1)![1], s.count, `${name}{${labels}} +Inf bucket = _count`);
  }
  return series;
}

test('rig proxy -c: histograms in /stats, /stats?format=json and /stats/prometheus', async (t) => {
  const dir = tempDir(t, 'rig-histograms-');
  const fast = await startUpstream('fast');
  const slow = await startUpstream('slow', (_q, res) => {
    setTimeout(() => res.end('finished'), SLOW_MS);
    return true;
  });
  t.after(async () => {
    await fast.close();
    await slow.close();
  });
  const boot = {
    // Histogram intervals of 200 ms (Envoy's default: 5 s).
    stats_flush_interval: '0.2s',
    static_resources: {
      listeners: [
        listener('edge', 'ingress_http', [
          { match: { prefix: '/slow' }, route: { cluster: 'slow' } },
          { match: { prefix: '/' }, route: { cluster: 'fast' } },
        ]),
        // The router's dynamic_stats off: no upstream_rq_time for its cluster.
        listener('quiet', 'quiet_http', [{ match: { prefix: '/' }, route: { cluster: 'quiet' } }], { dynamic_stats: false }),
      ],
      clusters: [cluster('fast', fast.port), cluster('slow', slow.port), cluster('quiet', fast.port)],
    },
  };
  const file = path.join(dir, 'envoy.yaml');
  fs.writeFileSync(file, stringify(boot));
  const { ports } = await startRigProxyFromFile(t, file);
  const edge = ports.listeners.edge;

  // Each request on its own downstream connection (closed after the response); the fast cluster's
  // pool keeps one upstream connection for all three.
  for (let i = 0; i < 3; i++) assert.equal((await request(edge, { path: '/' })).status, 200);
  assert.equal((await request(edge, { path: '/slow' })).body, 'finished');
  assert.equal((await request(ports.listeners.quiet, { path: '/' })).status, 200);

  const admin = async (p: string): Promise<string> => {
    const r = await request(ports.admin, { path: p });
    assert.equal(r.status, 200, `${p}: ${r.body}`);
    return r.body;
  };
  let lastProm = '';
  // The connection lengths are recorded when the proxy sees each client connection close.
  const json = await waitFor(
    () => `four downstream connections closed; /stats/prometheus has:\n${lastProm.split('\n').filter((l) => l.includes('length_ms_count')).join('\n')}`,
    async () => {
      const j = JSON.parse(await admin('/stats?format=json')) as StatsJson;
      const h = j.stats.find((s) => 'histograms' in s);
      const c = h && 'histograms' in h ? h.histograms.computed_quantiles.find((q) => q.name === 'listener.edge.downstream_cx_length_ms') : undefined;
      lastProm = await admin('/stats/prometheus');
      return c && c.values[0].cumulative !== null && lastProm.includes('envoy_listener_downstream_cx_length_ms_count{envoy_listener_address="edge"} 4\n') ? j : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  );

  // ?format=json: counters and gauges, then one {"histograms": ...} element, as Envoy.
  const last = json.stats.at(-1)!;
  assert.ok('histograms' in last, 'the histograms element comes last');
  assert.equal(json.stats.filter((s) => 'histograms' in s).length, 1);
  assert.deepEqual(last.histograms.supported_quantiles, SUPPORTED_QUANTILES);
  const quantiles = (name: string) => {
    const q = last.histograms.computed_quantiles.find((c) => c.name === name);
    assert.ok(q, `${name} in computed_quantiles`);
    assert.equal(q.values.length, SUPPORTED_QUANTILES.length);
    return q.values;
  };
  // One slow request: every cumulative quantile is that one value, at least the upstream's delay.
  const slowTime = quantiles('cluster.slow.upstream_rq_time').map((v) => v.cumulative!);
  assert.ok(slowTime[0] >= SLOW_MS, `upstream_rq_time ${slowTime[0]} >= ${SLOW_MS}`);
  assert.deepEqual(new Set(slowTime), new Set([slowTime[0]]));
  assert.ok(quantiles('http.ingress_http.downstream_rq_time')[9].cumulative! >= SLOW_MS, 'downstream_rq_time P100 is the slow request');
  assert.ok(quantiles('cluster.quiet.upstream_rq_time').every((v) => v.interval === null && v.cumulative === null), 'dynamic_stats: false records no upstream_rq_time');

  // Text: "name: P0(interval,cumulative) ... P100(...)", or "No recorded values".
  const text = await admin('/stats');
  const q = String.raw`(?:nan|\d+(?:\.\d+)?(?:e[+-]\d+)?)`;
  const summary = SUPPORTED_QUANTILES.map((p) => String.raw`P${String(p).replace('.', '\\.')}\(${q},${q}\)`).join(' ');
  assert.match(text, new RegExp(String.raw`^cluster\.slow\.upstream_rq_time: ${summary}$`, 'm'));
  assert.match(text, new RegExp(String.raw`^cluster\.slow\.upstream_rq_time: P0\(${q},${slowTime[0]}\) `, 'm'));
  assert.match(text, /^cluster\.quiet\.upstream_rq_time: No recorded values$/m);
  assert.match(text, /^cluster\.fast\.upstream_rq_total: 3$/m, 'counters still print as before');
  const used = await admin('/stats?usedonly&filter=upstream_rq_time');
  assert.match(used, /^cluster\.slow\.upstream_rq_time: P0/m);
  assert.doesNotMatch(used, /quiet|No recorded values/, '?usedonly leaves out histograms without values');
  assert.doesNotMatch(used, /upstream_rq_total/, '?filter applies');

  // Prometheus: the counters' tag extraction; a 300 ms request is past the 250 bucket.
  const prom = await admin('/stats/prometheus');
  const rqTime = promHistogram(prom, 'envoy_cluster_upstream_rq_time');
  const slowSeries = rqTime.get('envoy_cluster_name="slow"')!;
  assert.equal(slowSeries.count, 1);
  assert.equal(slowSeries.sum, slowTime[0]);
  const firstNonEmpty = slowSeries.buckets.find(([, n]) => n > 0)!;
  assert.ok(Number(firstNonEmpty[0]) >= 500, `the slow request's bucket (le=${firstNonEmpty[0]}) is past 250`);
  assert.equal(slowSeries.buckets.find(([le]) => le === '250')![1], 0);
  assert.equal(rqTime.get('envoy_cluster_name="fast"')!.count, 3);
  assert.equal(rqTime.get('envoy_cluster_name="quiet"')!.count, 0);
  const connect = promHistogram(prom, 'envoy_cluster_upstream_cx_connect_ms').get('envoy_cluster_name="fast"')!;
  assert.ok(connect.count >= 1 && prom.includes(`envoy_cluster_upstream_cx_total{envoy_cluster_name="fast"} ${connect.count}\n`), 'one connect time per upstream connection');
  assert.equal(promHistogram(prom, 'envoy_http_downstream_rq_time').get('envoy_http_conn_manager_prefix="ingress_http"')!.count, 4);
  assert.equal(promHistogram(prom, 'envoy_http_downstream_cx_length_ms').get('envoy_http_conn_manager_prefix="ingress_http"')!.count, 4);
  assert.equal(promHistogram(prom, 'envoy_listener_downstream_cx_length_ms').get('envoy_listener_address="edge"')!.count, 4);
  promHistogram(prom, 'envoy_cluster_upstream_cx_length_ms');

  // promtool parses the whole scrape; its lint notes on Envoy's names (no HELP lines, counters
  // without _total, "_ms") aside, it finds nothing wrong with the histograms.
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: prom, encoding: 'utf8' });
  if (promtool.error) t.diagnostic(`promtool not run: ${promtool.error.message}`);
  else {
    const out = (promtool.stdout + promtool.stderr).split('\n').filter((l) => !/ (no help text|.*"_total" suffix|metric names should not contain abbreviated units)$/.test(l)).join('\n');
    assert.doesNotMatch(out, /parsing error|error while linting/, out);
    assert.doesNotMatch(out, /_upstream_rq_time|_cx_connect_ms|_length_ms|downstream_rq_time/, out);
  }

  // Interval quantiles: what the last completed flush interval recorded (a request each poll keeps
  // recent intervals non-empty).
  await waitFor('an interval quantile for cluster.fast.upstream_rq_time', async () => {
    await request(edge, { path: '/' });
    return /^cluster\.fast\.upstream_rq_time: P0\(\d/m.test(await admin(`/stats?filter=${encodeURIComponent('^cluster\\.fast\\.')}`)) ? true : undefined;
  });
});
