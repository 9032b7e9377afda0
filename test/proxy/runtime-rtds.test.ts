// RTDS: an rtds_layer fetched over the ADS stream by `rig proxy -c`. The proxy subscribes to the
// Runtime resource first, stays INITIALIZING until it arrives (Envoy's runtime init), applies it
// over the static layer (here switching the fault filter on), NACKs a layer it cannot read while
// keeping the previous one, and an update to an empty layer switches the fault off again. Also an
// rtds_layer read from a file (path_config_source), reloaded when the file is moved into place.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { RUNTIME_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import type { RuntimeDump } from '../../src/proxy/envoy-runtime/index.ts';
import { AdsTestServer } from '../xds-client/ads-test-server.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { HCM, ROUTER, addr, request, staticCluster, startUpstream } from './harness.ts';

const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

function bootstrap(adsPort: number, upstreamPort: number): EnvoyJson {
  return {
    node: { id: 'router~127.0.0.1~gw.default~default.svc.cluster.local', cluster: 'gw' },
    dynamic_resources: { ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] } },
    static_resources: {
      clusters: [staticCluster('xds-grpc', [adsPort], { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } }), staticCluster('up', [upstreamPort])],
      listeners: [{
        name: 'http',
        address: addr(0),
        filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: {
          '@type': HCM,
          stat_prefix: 'http',
          route_config: { name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }] },
          http_filters: [{ name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT, abort: { http_status: 503, percentage: { numerator: 0 } } } }, ROUTER],
        } }] }],
      }],
    },
    layered_runtime: { layers: [
      { name: 'static_layer_0', static_layer: { fault: { http: { abort: { http_status: 502 } } } } },
      { name: 'rtds_layer_0', rtds_layer: { name: 'drill', rtds_config: { ads: {}, resource_api_version: 'V3' } } },
    ] },
  };
}

async function statuses(port: number): Promise<Set<number>> {
  return new Set(await Promise.all(Array.from({ length: 10 }, async () => (await request(port)).status)));
}

test('an rtds_layer over ADS: subscribed first, awaited for readiness, applied over the static layer, a bad layer NACKed', async (t) => {
  const ads = new AdsTestServer();
  const adsPort = await ads.start();
  const up = await startUpstream('up');
  t.after(() => Promise.all([ads.stop(), up.close()]));
  const file = path.join(tempDir(t, 'runtime-rtds-'), 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap(adsPort, up.port)));
  const proxy = await startRigProxyFromFile(t, file);
  const admin = `http://127.0.0.1:${proxy.ports.admin}`;
  const port = proxy.ports.listeners.http!;

  const sub = await ads.waitFor((r) => r.type_url === RUNTIME_TYPE);
  assert.deepEqual(sub.resource_names, ['drill']);
  assert.equal(ads.requests.find((r) => r.stream === sub.stream), sub, 'the runtime is the first subscription of the stream');
  assert.equal((await fetch(`${admin}/ready`)).status, 503, 'INITIALIZING until the runtime layer arrives');
  assert.deepEqual(await statuses(port), new Set([200]));

  let from = ads.requests.length;
  const n1 = ads.push(RUNTIME_TYPE, 'v1', [{ name: 'drill', layer: { fault: { http: { abort: { abort_percent: 100 } } } } }]);
  const ack = await ads.waitFor((r) => r.type_url === RUNTIME_TYPE && r.response_nonce === n1, from);
  assert.equal(ack.error_detail, undefined);
  assert.equal(ack.version_info, 'v1');
  assert.deepEqual(await statuses(port), new Set([502]), 'the RTDS percentage with the static layer status');
  assert.equal((await fetch(`${admin}/ready`)).status, 200);
  const dump = (await (await fetch(`${admin}/runtime`)).json()) as RuntimeDump;
  assert.deepEqual(dump.layers, ['static_layer_0', 'rtds_layer_0']);
  assert.deepEqual(dump.entries['fault.http.abort.abort_percent'], { final_value: '100', layer_values: ['', '100'] });

  from = ads.requests.length;
  const n2 = ads.push(RUNTIME_TYPE, 'v2', [{ name: 'drill', layer: { fault: { http: { abort: { abort_percent: [1, 2] } } } } }]);
  const nack = await ads.waitFor((r) => r.type_url === RUNTIME_TYPE && r.response_nonce === n2, from);
  assert.match(nack.error_detail?.message ?? '', /runtime "drill": layer\.fault\.http\.abort\.abort_percent: a runtime value cannot be a list/);
  assert.equal(nack.version_info, 'v1', 'the NACK keeps the accepted version');
  assert.deepEqual(await statuses(port), new Set([502]), 'the previous layer stays');

  from = ads.requests.length;
  const n3 = ads.push(RUNTIME_TYPE, 'v3', [{ name: 'drill', layer: {} }]);
  await ads.waitFor((r) => r.type_url === RUNTIME_TYPE && r.response_nonce === n3 && !r.error_detail, from);
  assert.deepEqual(await statuses(port), new Set([200]));
});

test('an rtds_layer from a file: read at start, reloaded when a new file is moved into place, a bad one rejected keeping the last', async (t) => {
  const up = await startUpstream('up');
  t.after(() => up.close());
  const dir = tempDir(t, 'runtime-rtds-file-');
  const rtdsFile = path.join(dir, 'rtds.yaml');
  const runtimeResponse = (layer: string) => `resources:\n- "@type": ${RUNTIME_TYPE}\n  name: drill\n  layer: ${layer}\n`;
  const moveIn = (text: string) => {
    fs.writeFileSync(path.join(dir, 'rtds.next'), text);
    fs.renameSync(path.join(dir, 'rtds.next'), rtdsFile);
  };
  moveIn(runtimeResponse('{ fault: { http: { abort: { abort_percent: 100 } } } }'));
  const boot = bootstrap(1, up.port);
  delete boot.dynamic_resources;
  (boot.layered_runtime as { layers: EnvoyJson[] }).layers[1] = { name: 'rtds_layer_0', rtds_layer: { name: 'drill', rtds_config: { path_config_source: { path: rtdsFile } } } };
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(boot));
  const proxy = await startRigProxyFromFile(t, file);
  const port = proxy.ports.listeners.http!;
  const admin = `http://127.0.0.1:${proxy.ports.admin}`;
  assert.deepEqual(await statuses(port), new Set([502]), 'the file layer is in from the start');
  assert.equal((await fetch(`${admin}/ready`)).status, 200);

  moveIn(runtimeResponse('{ fault: { http: { abort: { abort_percent: [1] } } } }'));
  moveIn(runtimeResponse('{ fault: { http: { abort: { abort_percent: 0 } } } }'));
  let codes = await statuses(port);
  // Until a whole batch is served after the reload (a batch can straddle it: 502 and 200).
  for (let i = 0; i < 500 && !(codes.size === 1 && codes.has(200)); i++) {
    await new Promise((r) => setTimeout(r, 10));
    codes = await statuses(port);
  }
  assert.deepEqual(codes, new Set([200]));
  const dump = (await (await fetch(`${admin}/runtime`)).json()) as RuntimeDump;
  assert.deepEqual(dump.entries['fault.http.abort.abort_percent'], { final_value: '0', layer_values: ['', '0'] });

  moveIn(runtimeResponse('{ fault: { http: { abort: { abort_percent: [1] } } } }'));
  for (let i = 0; i < 500 && !proxy.log().includes('a runtime value cannot be a list'); i++) await new Promise((r) => setTimeout(r, 10));
  assert.match(proxy.log(), /rtds_layer \\"drill\\": rejected; previous config kept/);
  assert.deepEqual(await statuses(port), new Set([200]), 'the rejected file changed nothing');
});
