// A finished span waiting for its export keeps its own strings only, not what they were cut from:
// the request's head (its header values, the URL, the caller's trace ids) and the pooled hex string
// of trace-context.ts its new ids come from. 400 spans held by the pipeline's batch (its flush is
// a second away), and the heap measured after garbage collection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { settledHeap } from '../../../test/helpers/leak-baseline.ts';
import { silentLogger } from '../../core/log.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { Stats } from '../stats/stats.ts';
import { spanPipeline, flushSpans } from './span-export.ts';
import { newTraceId } from './trace-context.ts';

const SPANS = 400;
const cut = (s: string, from: string, to: string) => s.slice(s.indexOf(from) + from.length, s.indexOf(to, s.indexOf(from)));

test('a span held for its export keeps about its own size, not its request head or the id pool', async (t) => {
  const stats = new Stats();
  // No collector endpoint: the flush after the test counts the spans as skipped.
  const clusters = { get: () => undefined } as unknown as ClusterManager;
  // Loads the OpenTelemetry SDK (~1.5 MB of heap) before the first measurement.
  const pipeline = spanPipeline(stats, clusters, { kind: 'opentelemetry', cluster: 'collector', path: '/v1/traces', serviceName: 'web.default', timeoutMs: 1000 }, silentLogger);
  t.after(() => flushSpans(stats));
  const before = await settledHeap();
  for (let i = 0; i < SPANS; i++) {
    // The unsampled requests between two sampled ones take their ids from the pool too.
    for (let j = 0; j < 200; j++) newTraceId();
    const head =
      `GET /api/v1/items/${i} HTTP/1.1\r\nhost: reviews.default.svc.cluster.local:9080\r\n` +
      `traceparent: 00-${newTraceId()}-${newTraceId().slice(0, 16)}-01\r\nuser-agent: Mozilla/5.0 (X11; Linux x86_64)\r\n` +
      `cookie: session=${'c'.repeat(8000)}\r\n`;
    const authority = cut(head, 'host: ', '\r\n');
    const traceparent = cut(head, 'traceparent: ', '\r\n');
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52), traceFlags: TraceFlags.SAMPLED, isRemote: true });
    const span = pipeline.tracer.startSpan(authority + '/*', { kind: SpanKind.SERVER }, parent);
    span.updateName(authority + '/*');
    span.setAttributes({ 'http.url': 'http://' + authority + cut(head, 'GET ', ' HTTP'), user_agent: cut(head, 'user-agent: ', '\r\n'), 'guid:x-request-id': newTraceId(), 'http.method': 'GET' });
    span.end();
  }
  const perSpan = ((await settledHeap()) - before) / SPANS;
  t.diagnostic(`${Math.round(perSpan)} bytes per held span`);
  // Each span's request head is ~8.2 KB and each id pool 8 KB: keeping either would read above 8 KB.
  assert.ok(perSpan > 500 && perSpan < 4096, `${Math.round(perSpan)} bytes per held span`);
});
