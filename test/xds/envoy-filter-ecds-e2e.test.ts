// An EnvoyFilter's EXTENSION_CONFIG, through the real control plane and real `rig proxy` sidecars,
// as istiod serves it: an HTTP_FILTER patch puts a local rate limit filter that names its config
// (config_discovery, name sleep-ratelimit) before the router of the sleep sidecar's outbound
// connection managers, and an EXTENSION_CONFIG ADD patch of the same EnvoyFilter gives that config,
// served over ECDS. Changing the EXTENSION_CONFIG patch (a bucket of 1000 tokens, then of 1) reaches
// the next requests on the client's keep-alive connection over ECDS alone: no listener is pushed.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream } from '../proxy/harness.ts';
import { parseYaml } from './fixtures.ts';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
`;

const ENVOY_FILTER = (tokens: number) => `---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: sleep-ratelimit, namespace: default }
spec:
  workloadSelector: { labels: { app: sleep } }
  configPatches:
    - applyTo: HTTP_FILTER
      match:
        context: SIDECAR_OUTBOUND
        listener: { filterChain: { filter: { name: envoy.filters.network.http_connection_manager, subFilter: { name: envoy.filters.http.router } } } }
      patch:
        operation: INSERT_BEFORE
        value:
          name: sleep-ratelimit
          config_discovery:
            config_source: { ads: {}, initial_fetch_timeout: 0s }
            type_urls: [type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit]
    - applyTo: EXTENSION_CONFIG
      patch:
        operation: ADD
        value:
          name: sleep-ratelimit
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            stat_prefix: sleep_rl
            token_bucket: { max_tokens: ${tokens}, tokens_per_fill: ${tokens}, fill_interval: 3600s }
            filter_enabled: { runtime_key: rl_enabled, default_value: { numerator: 100, denominator: HUNDRED } }
            filter_enforced: { runtime_key: rl_enforced, default_value: { numerator: 100, denominator: HUNDRED } }
`;

interface Dump {
  configs: { '@type': string; dynamic_listeners?: { name: string; active_state?: { version_info: string } }[]; ecds_filters?: { version_info: string; ecds_filter: { name: string } }[] }[];
}

test("an EnvoyFilter's EXTENSION_CONFIG is served over ECDS to the filter naming it; a changed config reaches the existing connection without a listener push", async (t) => {
  const app = await startUpstream('productpage');
  t.after(() => app.close());
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-envoyfilter-ecds-', config: SERVICE + ENVOY_FILTER(1000), controlPlane: { debounceMs: 10 } });
  const outbound = await freePort();
  const sleep = await startSidecar(t, mesh, { namespace: 'default', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  await startSidecar(t, mesh, { namespace: 'default', name: 'productpage', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = () =>
    new Promise<{ status: number; clientPort: number; connection: string | undefined }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: outbound, path: 'http://productpage.default.svc.cluster.local:9080/productpage', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, clientPort: req.socket!.localPort!, connection: res.headers.connection }));
      });
      req.on('error', reject);
    });
  const dump = async () => (await fetch(`http://127.0.0.1:${(await sleep.started()).admin}/config_dump`).then((r) => r.json())) as Dump;
  const listenerVersions = (d: Dump) => JSON.stringify(d.configs.flatMap((c) => c.dynamic_listeners ?? []).map((l) => [l.name, l.active_state?.version_info]));
  const ecds = (d: Dump) => d.configs.flatMap((c) => c.ecds_filters ?? []);

  const first = await waitFor('productpage through the sleep sidecar', async () => {
    const r = await get().catch(() => undefined);
    return r?.status === 200 ? r : undefined;
  });
  for (let i = 0; i < 3; i++) assert.equal((await get()).status, 200, 'a bucket of 1000 tokens');
  const before = await dump();
  assert.deepEqual(
    ecds(before).map((e) => e.ecds_filter.name),
    ['sleep-ratelimit'],
    'the config came over ECDS, by the name the filter gives',
  );

  mesh.store.apply(parseYaml(ENVOY_FILTER(1)));
  const limited = await waitFor('the one-token bucket', async () => {
    const r = await get();
    return r.status === 429 ? r : undefined;
  });
  assert.equal(limited.clientPort, first.clientPort, 'on the same keep-alive connection');
  assert.notEqual(limited.connection, 'close', 'not drained');
  const after = await dump();
  assert.equal(listenerVersions(after), listenerVersions(before), 'no listener was pushed: each still at the version it had');
  assert.notEqual(ecds(after)[0].version_info, ecds(before)[0].version_info, 'a new ECDS version');
});
