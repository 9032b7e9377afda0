// Istio's "Classifying Metrics Based on Request or Response" task: a Wasm plugin (Istio's
// attributegen) sets an attribute, and a Telemetry tag override names it bare
// (`request_operation: istio_operationId`), as Istio's stats filter resolves a name no Envoy
// attribute has from the filter state the plugin set (`wasm.<name>`); `filter_state[...]` reads it
// too. A plugin built from WebAssembly text sets istio_operationId from a request header; the
// stats filter behind it labels istio_requests_total with it. rig proxy in process, real sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';
import { telemetryOf } from '../../src/proxy/telemetry/index.ts';
import { writePlugin, type PluginSource } from '../helpers/wasm-plugins.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** Sets the property istio_operationId to the request's x-operation header, when it has one. */
const operationPlugin: PluginSource = {
  strings: { header: 'x-operation', attr: 'istio_operationId' },
  imports: ['proxy_get_header_map_value', 'proxy_set_property'],
  body: `
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 0) (i32.const $header$) (i32.const #header#) (i32.const 16) (i32.const 20)))
      (then (drop (call $proxy_set_property (i32.const $attr$) (i32.const #attr#) (i32.load (i32.const 16)) (i32.load (i32.const 20))))))
    (i32.const 0))`,
};

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

test("a tag override naming a Wasm plugin's attribute bare, or through filter_state, labels Istio's request metrics with it", async (t) => {
  const dir = tempDir(t);
  const file = await writePlugin(dir, 'operation', operationPlugin);
  const up = await startUpstream('reviews');
  const h = await startTestRuntime(t, [up]);
  const wasm = {
    name: 'istio.attributegen',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
      config: { name: 'attributegen', root_id: 'attributegen', vm_config: { vm_id: 'attributegen', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: file } } } },
    },
  };
  const dimensions = { request_operation: 'istio_operationId', fs_operation: "filter_state['wasm.istio_operationId']" };
  const stats = { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: 'type.googleapis.com/stats.PluginConfig', value: { reporter: 'SERVER', metrics: [{ name: 'requests_total', dimensions }] } } };
  await configure(h, {
    clusters: [staticCluster('inbound|9080||', [up.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'inbound|9080||' } }])],
    listeners: [httpListener('l', 'r', { stat_prefix: 'inbound_0.0.0.0_9080', http_filters: [wasm, stats, ROUTER] })],
  });

  for (const op of ['GetReview', 'GetReview', 'ListReviews']) assert.equal((await request(h.port('l'), { path: '/reviews/1', headers: { 'x-operation': op } })).status, 200);
  assert.equal((await request(h.port('l'), { path: '/health' })).status, 200);

  let requests: string[] = [];
  for (let i = 0; i < 50; i++) {
    requests = telemetryOf(h.rt.stats)!.metrics.render().split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    if (requests.length >= 3) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const count = (labels: RegExp) => requests.filter((l) => labels.test(l)).map((l) => Number(l.split(' ').pop()));
  assert.deepEqual(count(/request_operation="GetReview",fs_operation="GetReview"/), [2], requests.join('\n'));
  assert.deepEqual(count(/request_operation="ListReviews",fs_operation="ListReviews"/), [1], requests.join('\n'));
  // No attribute set: the expression has no value, and the label reads "unknown", as Istio's.
  assert.deepEqual(count(/request_operation="unknown",fs_operation="unknown"/), [1], requests.join('\n'));
});
