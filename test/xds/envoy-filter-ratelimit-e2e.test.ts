// Istio's "Enabling Rate Limits using Envoy" task (local rate limit) through the real control plane
// and two real `rig proxy` processes: the task's EnvoyFilter, in the root namespace and selecting
// app=productpage, inserts envoy.filters.http.local_ratelimit (a TypedStruct, as the task writes it)
// into productpage's inbound HTTP connection managers. With a bucket of 2 tokens filled every 60 s,
// two requests from the sleep sidecar pass and the third is refused with 429 and x-local-rate-limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-local-ratelimit-svc
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      app: productpage
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_INBOUND
        listener:
          filterChain:
            filter:
              name: "envoy.filters.network.http_connection_manager"
      patch:
        operation: INSERT_BEFORE
        value:
          name: envoy.filters.http.local_ratelimit
          typed_config:
            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            value:
              stat_prefix: http_local_rate_limiter
              token_bucket:
                max_tokens: 2
                tokens_per_fill: 2
                fill_interval: 60s
              filter_enabled:
                runtime_key: local_rate_limit_enabled
                default_value:
                  numerator: 100
                  denominator: HUNDRED
              filter_enforced:
                runtime_key: local_rate_limit_enforced
                default_value:
                  numerator: 100
                  denominator: HUNDRED
              response_headers_to_add:
                - append: false
                  header:
                    key: x-local-rate-limit
                    value: 'true'
`;

test("Istio's local rate limit task: 2 requests pass, the third gets 429 with x-local-rate-limit: true", async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-envoyfilter-', config: CONFIG, controlPlane: { debounceMs: 10 } });
  const app = await startUpstream('productpage');
  t.after(() => app.close());
  const outbound = await freePort();
  // sleep first: productpage's arrival then changes only what sleep gets, not productpage's buckets.
  await startSidecar(t, mesh, { namespace: 'default', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  await startSidecar(t, mesh, { namespace: 'default', name: 'productpage', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });
  const viaSleep = () => request(outbound, { path: 'http://productpage.default.svc.cluster.local:9080/productpage' });

  // Until productpage's endpoint reaches sleep, requests end at sleep's sidecar and take no token.
  const first = await waitFor('a request through the sleep sidecar to productpage', async () => {
    const r = await viaSleep().catch(() => undefined);
    return r && r.status !== 503 ? r : undefined;
  });
  const second = await viaSleep();
  const third = await viaSleep();
  assert.deepEqual([first.status, second.status, third.status], [200, 200, 429]);
  assert.equal(first.headers['x-local-rate-limit'], undefined);
  assert.equal(second.headers['x-local-rate-limit'], undefined);
  assert.equal(third.headers['x-local-rate-limit'], 'true');
  assert.equal(app.requests.length, 2, 'the refused request never reached productpage');
});
