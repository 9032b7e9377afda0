// The benchmark's parsers of wrk/h2load reports and its percentile arithmetic (bench/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseH2load, parseWrk } from '../../bench/load/saturate.ts';
import { percentile, summarize } from '../../bench/lib/percentiles.ts';

const WRK = `Running 1s test @ http://127.0.0.1:18766/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.28ms    1.35ms  10.03ms   80.74%
    Req/Sec     0.88k   130.87     1.12k    63.64%
  969 requests in 1.10s, 4.02MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:    880.63
Transfer/sec:      3.65MB
`;

const H2LOAD = `finished in 2.00s, 51234.50 req/s, 55.12MB/s
requests: 102469 total, 102469 started, 102469 done, 102400 succeeded, 69 failed, 0 errored, 0 timeout
status codes: 102400 2xx, 0 3xx, 0 4xx, 69 5xx
`;

test('wrk: requests, duration, rate and errors (non-2xx plus socket errors)', () => {
  const r = parseWrk(WRK);
  assert.equal(r.requests, 969);
  assert.equal(r.durationS, 1.1);
  assert.ok(Math.abs(r.rps - 969 / 1.1) < 1e-9);
  assert.equal(r.errors, 6);
});

test('wrk: durations in minutes and a report without errors', () => {
  const r = parseWrk('  60000 requests in 1.00m, 61.00MB read\nRequests/sec: 1000.00\n');
  assert.equal(r.durationS, 60);
  assert.equal(r.errors, 0);
});

test('h2load: succeeded requests, rate and failures', () => {
  const r = parseH2load(H2LOAD);
  assert.equal(r.requests, 102400);
  assert.equal(r.rps, 51234.5);
  assert.equal(r.durationS, 2);
  assert.equal(r.errors, 69);
  assert.equal(parseH2load(H2LOAD.replace('2.00s', '1.10ms')).durationS, 0.0011);
});

test('unexpected tool output is an error that shows the output', () => {
  assert.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused'), /unexpected wrk output:\nunable to connect/);
  assert.throws(() => parseH2load('no output'), /unexpected h2load output/);
});

test('percentiles are nearest-rank over the sorted samples', () => {
  const v = Array.from({ length: 1000 }, (_, i) => 1000 - i); // 1000..1, unsorted
  const s = summarize(v);
  assert.equal(s.samples, 1000);
  assert.equal(s.p50, 500);
  assert.equal(s.p90, 900);
  assert.equal(s.p99, 990);
  assert.equal(s.p999, 999);
  assert.equal(s.max, 1000);
  assert.equal(s.mean, 500.5);
  assert.equal(percentile(Float64Array.of(7), 99.9), 7);
  assert.ok(Number.isNaN(summarize([]).p50));
});
