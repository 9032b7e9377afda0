// A finished span waiting for its export keeps its own strings only, not what they were cut from:
// the request's head (its header values, the URL, the caller's trace ids) and the pooled hex string
// of trace-context.ts its new ids come from. 400 spans held by the pipeline's batch (its flush is
// a second away).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { heapBytesPerItem, moduleUrl } from '../../../test/helpers/heap-per-item.ts';

const at = (p: string) => moduleUrl(path.join(import.meta.dirname, p));

test('a span held for its export keeps about its own size, not its request head or the id pool', (t) => {
  const perSpan = heapBytesPerItem(
    `import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
     import { spanPipeline } from ${at('span-export.ts')};
     import { newTraceId } from ${at('trace-context.ts')};
     import { Stats } from ${at('../stats/stats.ts')};
     import { silentLogger } from ${at('../../core/log.ts')};
     const target = { kind: 'opentelemetry', cluster: 'collector', path: '/v1/traces', serviceName: 'web.default', timeoutMs: 1000 };
     // Loads the OpenTelemetry SDK (~1.5 MB of heap) before the first measurement.
     const pipeline = spanPipeline(new Stats(), { get: () => undefined }, target, silentLogger);`,
    `const cut = (s, from, to) => s.slice(s.indexOf(from) + from.length, s.indexOf(to, s.indexOf(from)));
     const SPANS = 400;
     for (let i = 0; i < SPANS; i++) {
       // The unsampled requests between two sampled ones take their ids from the pool too.
       for (let j = 0; j < 200; j++) newTraceId();
       const head = 'GET /api/v1/items/' + i + ' HTTP/1.1\\r\\nhost: reviews.default.svc.cluster.local:9080\\r\\n' +
         'traceparent: 00-' + newTraceId() + '-' + newTraceId().slice(0, 16) + '-01\\r\\nuser-agent: Mozilla/5.0 (X11; Linux x86_64)\\r\\n' +
         'cookie: session=' + 'c'.repeat(8000) + '\\r\\n';
       const authority = cut(head, 'host: ', '\\r\\n');
       const traceparent = cut(head, 'traceparent: ', '\\r\\n');
       const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52), traceFlags: TraceFlags.SAMPLED, isRemote: true });
       const span = pipeline.tracer.startSpan(authority + '/*', { kind: SpanKind.SERVER }, parent);
       span.updateName(authority + '/*');
       span.setAttributes({ 'http.url': 'http://' + authority + cut(head, 'GET ', ' HTTP'), user_agent: cut(head, 'user-agent: ', '\\r\\n'), 'guid:x-request-id': newTraceId(), 'http.method': 'GET' });
       span.end();
     }
     return { kept: pipeline, items: SPANS };`,
  );
  t.diagnostic(`${Math.round(perSpan)} bytes per held span`);
  // Each span's request head is ~8.2 KB and each id pool 8 KB: keeping either would read above 8 KB.
  assert.ok(perSpan > 500 && perSpan < 4096, `${Math.round(perSpan)} bytes per held span`);
});
