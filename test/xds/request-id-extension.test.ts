// Every generated HTTP connection manager carries Istio's request ID extension (UuidRequestIdConfig):
// use_request_id_for_trace_sampling is the Telemetry tracing useRequestIdForTraceSampling when
// tracing is on, else true; the proxy takes the result.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE, UUID_REQUEST_ID_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, parseYaml } from './fixtures.ts';

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: reviews, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  tracing: [{ useRequestIdForTraceSampling: false }]
`;

function extensions(listeners: EnvoyJson[]): unknown[] {
  const out: unknown[] = [];
  JSON.stringify(listeners, (k, v: unknown) => {
    if (k === 'request_id_extension') out.push(v);
    return v;
  });
  return out;
}

test('request_id_extension on every HCM, from the Telemetry tracing useRequestIdForTraceSampling', (t) => {
  const reviews = explicitSidecar('reviews-v1-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }]);
  const other = explicitSidecar('ratings-v1-0', 'default', { app: 'ratings' }, 'ratings', [{ port: 9080, name: 'http' }]);
  const ext = (v: boolean) => ({ typed_config: { '@type': UUID_REQUEST_ID_TYPE, use_request_id_for_trace_sampling: v } });
  for (const [enableTracing, reviewsValue] of [[true, false], [false, true]] as const) {
    const push = buildPush(parseYaml(CONFIG), [reviews, other], { mesh: { enableTracing } });
    const mine = GENERATORS[LISTENER_TYPE].generate(push, reviews, undefined);
    const theirs = GENERATORS[LISTENER_TYPE].generate(push, other, undefined);
    // explicit sidecars: the http_proxy HCM, the unbound outbound listener of port 9080's (CONNECT
    // tunnels to reviews:9080 go through it) and the inbound port's two chains.
    assert.equal(extensions(mine).length, 4);
    assert.deepEqual(new Set(extensions(mine).map((e) => JSON.stringify(e))), new Set([JSON.stringify(ext(reviewsValue))]), `enableTracing ${enableTracing}`);
    assert.deepEqual(new Set(extensions(theirs).map((e) => JSON.stringify(e))), new Set([JSON.stringify(ext(true))]));
    if (enableTracing) {
      const rt = new ProxyRuntime({ node: { id: reviews.id, cluster: 'reviews.default', metadata: {} } });
      t.after(() => rt.stop());
      assert.deepEqual(rt.apply(LISTENER_TYPE, new Map(mine.map((l) => [String(l.name), l]))).filter((e) => /request_id/.test(e)), []);
    }
  }
});
