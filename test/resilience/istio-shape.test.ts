// The exact resources the control plane generates from a VirtualService with fault and corsPolicy
// (src/xds: HCM http_filters + per-route typed_per_filter_config) run in the proxy: no NACK, the
// fault and CORS behave as Istio documents.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE, ROUTE_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, parseYaml } from '../xds/fixtures.ts';
import { configure, httpListener, request, startTestRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';

const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec: { selector: { app: ratings }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    fault: { abort: { percentage: { value: 100.0 }, httpStatus: 500 } }
    route: [{ destination: { host: ratings } }]
  - match: [{ uri: { prefix: /slow } }]
    fault: { delay: { percentage: { value: 100.0 }, fixedDelay: 0.05s } }
    route: [{ destination: { host: ratings } }]
  - route: [{ destination: { host: ratings } }]
    corsPolicy:
      allowOrigins: [{ exact: "https://shop.example" }, { regex: "https://.*\\\\.corp\\\\.example" }]
      allowMethods: [GET, POST]
      allowHeaders: [x-token]
      maxAge: 24h
      allowCredentials: true
`;

test('fault and CORS as generated from a VirtualService are accepted and enforced', async (t) => {
  const client = explicitSidecar('client-0', 'default', { app: 'client' }, 'client', [], { base: 41000 });
  const push = buildPush(parseYaml(CONFIG), [client]);
  const routes = GENERATORS[ROUTE_TYPE].generate(push, client, ['http_proxy']);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, client, undefined);
  const hcm = (listeners.find((l) => l.name === 'http_proxy')!.filter_chains as EnvoyJson[])
    .flatMap((c) => c.filters as EnvoyJson[])
    .find((f) => f.name === 'envoy.filters.network.http_connection_manager')!.typed_config as EnvoyJson;
  const filters = hcm.http_filters as EnvoyJson[];
  assert.ok(filters.some((f) => f.name === 'envoy.filters.http.fault') && filters.some((f) => f.name === 'envoy.filters.http.cors'));

  const up = await startUpstream('ratings');
  const h = await startTestRuntime(t, [up]);
  // The generated http_filters and RDS route configuration, on a test listener and cluster.
  await configure(h, {
    clusters: [staticCluster('outbound|9080||ratings.default.svc.cluster.local', [up.port])],
    routes,
    listeners: [httpListener('l', 'http_proxy', { http_filters: filters })],
  });
  assert.deepEqual((h.rt.warnings.get(ROUTE_TYPE) ?? []).filter((w) => /fault|cors/.test(w)), [], 'nothing of fault or CORS ignored');
  const port = h.port('l');
  const host = 'ratings:9080';
  let r = await request(port, { headers: { host, 'end-user': 'jason' } });
  assert.equal(r.status, 500);
  assert.equal(r.body, 'fault filter abort');
  r = await request(port, { path: '/slow', headers: { host } });
  assert.equal(r.status, 200);
  assert.ok((h.streams.at(-1)!.responseFlags & (1 << 9)) !== 0, 'DI');
  r = await request(port, { method: 'OPTIONS', headers: { host, origin: 'https://a.corp.example', 'access-control-request-method': 'POST' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], 'https://a.corp.example');
  assert.equal(r.headers['access-control-allow-methods'], 'GET,POST');
  assert.equal(r.headers['access-control-allow-headers'], 'x-token');
  assert.equal(r.headers['access-control-max-age'], '86400');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  r = await request(port, { headers: { host, origin: 'https://shop.example' } });
  assert.equal(r.json().server, 'ratings');
  assert.equal(r.headers['access-control-allow-origin'], 'https://shop.example');
  r = await request(port, { headers: { host, origin: 'https://evil.example' } });
  assert.equal(r.headers['access-control-allow-origin'], undefined);
});
