// Istio's "Enabling Rate Limits using Envoy" task (local rate limit) through the real control plane
// and two real `rig proxy` processes: the task's EnvoyFilter, in the root namespace and selecting
// app=productpage, inserts envoy.filters.http.local_ratelimit (a TypedStruct, as the task writes it)
// into productpage's inbound HTTP connection managers. With a bucket of 2 tokens filled every 60 s,
// two requests from the sleep sidecar pass and the third is refused with 429 and x-local-rate-limit.
// The task's per-route form (the filter without a bucket, the bucket in the inbound routes'
// typed_per_filter_config through an HTTP_ROUTE MERGE) behaves the same.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
`;

const LIMIT = `
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
                    value: 'true'`;

const FILTER = (value: string) => `
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
            value:${value}`;

const ENVOY_FILTER = (patches: string) => `---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: filter-local-ratelimit-svc
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      app: productpage
  configPatches:${patches}
`;

/** The task's EnvoyFilter for the whole sidecar. */
const WHOLE = ENVOY_FILTER(FILTER(LIMIT));

/** The task's per-route form: the filter only names its stats; the inbound routes carry the bucket. */
const PER_ROUTE = ENVOY_FILTER(
  FILTER('\n              stat_prefix: http_local_rate_limiter') +
    `
    - applyTo: HTTP_ROUTE
      match:
        context: SIDECAR_INBOUND
        routeConfiguration:
          vhost:
            name: "inbound|http|9080"
            route:
              action: ANY
      patch:
        operation: MERGE
        value:
          typed_per_filter_config:
            envoy.filters.http.local_ratelimit:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              value:${LIMIT.replaceAll('\n', '\n    ')}`,
);

async function threeRequests(t: TestContext, envoyFilter: string) {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-envoyfilter-', config: SERVICE + envoyFilter, controlPlane: { debounceMs: 10 } });
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
  return { first, second, third, app };
}

for (const [form, envoyFilter] of [
  ['for the whole sidecar', WHOLE],
  ['per route', PER_ROUTE],
] as const) {
  test(`Istio's local rate limit task (${form}): 2 requests pass, the third gets 429 with x-local-rate-limit: true`, async (t) => {
    const { first, second, third, app } = await threeRequests(t, envoyFilter);
    assert.deepEqual([first.status, second.status, third.status], [200, 200, 429]);
    assert.equal(first.headers['x-local-rate-limit'], undefined);
    assert.equal(second.headers['x-local-rate-limit'], undefined);
    assert.equal(third.headers['x-local-rate-limit'], 'true');
    assert.equal(app.requests.length, 2, 'the refused request never reached productpage');
  });
}
