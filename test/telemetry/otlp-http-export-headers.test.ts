// http_service.request_headers_to_add is compiled once and evaluated for each export, as Envoy's
// HttpServiceHeadersApplicator: %START_TIME% is the time of each export (not of the config), a
// plain value and a raw_value are the same every time. Real sockets: the in-process proxy runtime
// exporting through its collector cluster to a real OTLP/HTTP collector that records the headers.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { startOtlpCollector } from '../helpers/otlp-collector.ts';
import { waitFor } from '../helpers/wait.ts';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';

const OTEL = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';

test('OTLP/HTTP: %START_TIME% in request_headers_to_add is the time of each export', async (t) => {
  const collector = await startOtlpCollector(t);
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const http_service = {
    http_uri: { uri: 'http://otel-collector:4318/v1/traces', cluster: 'otel', timeout: '5s' },
    request_headers_to_add: [
      { header: { key: 'x-export-time', value: '%START_TIME%' } },
      { header: { key: 'x-scope-orgid', value: 'team-a' } },
      { header: { key: 'x-raw', raw_value: Buffer.from('%START_TIME%').toString('base64') } },
    ],
  };
  const tracing = { random_sampling: { value: 100 }, provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': OTEL, http_service } } };
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('otel', [collector.port])],
    listeners: [httpListener('edge', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { tracing })],
  });
  const configured = Date.now();

  const exportOne = async (n: number) => {
    assert.equal((await request(h.port('edge'))).status, 200);
    return waitFor(`export ${n}`, async () => {
      await flushSpans(h.rt.stats);
      return collector.requests[n - 1];
    });
  };
  const first = await exportOne(1);
  await sleep(20);
  const between = Date.now();
  const second = await exportOne(2);

  const t1 = Date.parse(String(first.headers['x-export-time']));
  const t2 = Date.parse(String(second.headers['x-export-time']));
  assert.ok(t1 >= configured, `the first export's own time (${first.headers['x-export-time']}), not the config's`);
  assert.ok(t2 >= between, `the second export's own time (${second.headers['x-export-time']}), after the first export`);
  assert.ok(t2 > t1);
  for (const r of [first, second]) {
    assert.equal(r.headers['x-scope-orgid'], 'team-a');
    assert.equal(r.headers['x-raw'], '%START_TIME%', 'raw_value is not a format string');
  }
});
