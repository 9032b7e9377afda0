// Istio's "Classifying Metrics Based on Request or Response" task through the real control plane and
// two real `rig proxy` sidecars: a WasmPlugin on reviews classifies requests with a CEL expression
// (the task's own, POSIX class included) through the proxy's expr_create / expr_evaluate foreign
// functions, as Istio's attributegen does, and sets istio_operationId in its log phase; the task's
// Telemetry puts it on istio_requests_total as request_operation. The plugin is WebAssembly text
// built at test time (attributegen itself is a C++ module this machine cannot build or fetch).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const GET_REVIEW = "request.url_path.matches('^/reviews/[[:alnum:]]*$') && request.method == 'GET'";

/** attributegen's behaviour for one rule: the expression created at configure time, evaluated in the log phase; true → istio_operationId = GetReview. */
const classifyPlugin: PluginSource = {
  strings: { create: 'expr_create', evaluate: 'expr_evaluate', expr: GET_REVIEW, attr: 'istio_operationId', value: 'GetReview' },
  imports: ['proxy_call_foreign_function', 'proxy_set_property'],
  body: `
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (if (call $proxy_call_foreign_function (i32.const $create$) (i32.const #create#) (i32.const $expr$) (i32.const #expr#) (i32.const 16) (i32.const 20))
      (then (return (i32.const 0))))
    ;; the token, kept at 32 as expr_evaluate's argument
    (i32.store (i32.const 32) (i32.load (i32.load (i32.const 16))))
    (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (if (call $proxy_call_foreign_function (i32.const $evaluate$) (i32.const #evaluate#) (i32.const 32) (i32.const 4) (i32.const 16) (i32.const 20))
      (then (return)))
    (if (i32.and (i32.eq (i32.load (i32.const 20)) (i32.const 1)) (i32.eq (i32.load8_u (i32.load (i32.const 16))) (i32.const 1)))
      (then (drop (call $proxy_set_property (i32.const $attr$) (i32.const #attr#) (i32.const $value$) (i32.const #value#)))))) `,
};

const total = (lines: string[]) => lines.reduce((n, l) => n + Number(l.split(' ').pop()), 0);

const CONFIG = (plugin: string) => `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: istio-attributegen-filter, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  url: file://${plugin}
  phase: AUTHN
  pluginConfig:
    attributes:
    - output_attribute: istio_operationId
      match:
      - value: GetReview
        condition: "${GET_REVIEW}"
---
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: { name: custom-tags, namespace: istio-system }
spec:
  metrics:
  - overrides:
    - match: { metric: REQUEST_COUNT, mode: CLIENT_AND_SERVER }
      tagOverrides:
        request_operation: { value: istio_operationId }
    providers:
    - name: prometheus
`;

test("Istio's Classifying Metrics task: a WasmPlugin's CEL classification becomes istio_requests_total's request_operation on reviews", async (t) => {
  const app = await startUpstream('reviews');
  t.after(() => app.close());
  const dir = tempDir(t, 'rig-classify-');
  const plugin = await writePlugin(dir, 'classify', classifyPlugin);
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-classify-', config: CONFIG(plugin), controlPlane: { debounceMs: 10 } });
  const outbound = await freePort();
  const stats = await freePort();
  await startSidecar(t, mesh, { namespace: 'default', name: 'productpage', args: ['--outbound-port', String(outbound)] });
  await startSidecar(t, mesh, { namespace: 'default', name: 'reviews', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort()), '--stats-port', String(stats)] });
  const get = (path: string, method = 'GET') => request(outbound, { method, path: `http://reviews.default.svc.cluster.local:9080${path}` });

  await waitFor('reviews reachable through the sidecars', async () => ((await get('/health').catch(() => undefined))?.status === 200 ? true : undefined));
  for (const [path, method] of [['/reviews/1', 'GET'], ['/reviews/abc', 'GET'], ['/reviews/', 'POST'], ['/ratings/1', 'GET']]) assert.equal((await get(path, method)).status, 200);

  const series = await waitFor('the five requests counted by reviews', async () => {
    const text = (await request(stats, { path: '/stats/prometheus' })).body;
    const lines = text.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"'));
    return total(lines) >= 5 ? lines : undefined;
  });
  const count = (op: string) => total(series.filter((l) => l.includes(`request_operation="${op}"`)));
  assert.equal(count('GetReview'), 2, series.join('\n'));
  assert.ok(count('unknown') >= 3, 'POST /reviews/, /ratings/1 and /health are not GetReview: the attribute is unset\n' + series.join('\n'));
});
