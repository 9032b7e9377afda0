// Gateway API v1.5 features through real processes (`rig controlplane` watching a config directory,
// a `rig proxy --mode router` labelled as Istio's automated deployment labels a gateway, HTTP
// upstreams): an HTTPRoute CORS filter answered by the gateway's CORS filter, and a ListenerSet in
// another namespace adding a listener to a Gateway that allows it, one refused where it does not.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { runRig } from '../helpers/cli.ts';
import { serviceEntry, startGatewayApiGateway } from '../helpers/edge-gateway.ts';
import { startControlPlaneProcess } from '../helpers/mesh-control-plane.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream, type Upstream } from '../proxy/harness.ts';

const CONFIG = `apiVersion: v1
kind: Namespace
metadata: { name: team, labels: { gateway-access: "yes" } }
---
apiVersion: v1
kind: Namespace
metadata: { name: other }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: shop, namespace: default }
spec:
  gatewayClassName: istio
  allowedListeners: { namespaces: { from: Selector, selector: { matchLabels: { gateway-access: "yes" } } } }
  listeners:
  - { name: http, port: 8080, protocol: HTTP }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: api, namespace: default }
spec:
  parentRefs: [{ name: shop }]
  hostnames: [shop.example.com]
  rules:
  - matches: [{ path: { type: PathPrefix, value: /api } }]
    filters:
    - type: CORS
      cors:
        allowOrigins: [https://app.example.com, "https://*.trusted.example"]
        allowMethods: [GET, PUT]
        allowHeaders: [x-token]
        exposeHeaders: [x-upstream]
        allowCredentials: true
        maxAge: 600
    backendRefs: [{ name: v1, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: extra, namespace: team }
spec:
  parentRef: { name: shop, namespace: default }
  listeners:
  - { name: team-http, port: 8081, protocol: HTTP, hostname: team.example.com, allowedRoutes: { namespaces: { from: Same } } }
  - { name: clash, port: 8080, protocol: HTTP }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: team, namespace: team }
spec:
  parentRefs: [{ group: gateway.networking.k8s.io, kind: ListenerSet, name: extra, sectionName: team-http }]
  rules:
  - backendRefs: [{ name: v2, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: refused, namespace: other }
spec:
  parentRef: { name: shop, namespace: default }
  listeners:
  - { name: other-http, port: 8082, protocol: HTTP }
`;

interface Setup {
  ports: { http: number; team: number; other: number };
  v1: Upstream;
  v2: Upstream;
  cpLog(): string;
  monitoring: number;
}

async function setup(t: TestContext): Promise<Setup> {
  const [v1, v2] = await Promise.all([startUpstream('v1'), startUpstream('v2')]);
  t.after(() => Promise.all([v1.close(), v2.close()]));
  const cp = await startControlPlaneProcess(t, tempDir(t, 'rig-gwapi-v15-'), serviceEntry('v1', v1.port) + serviceEntry('v2', v2.port, { namespace: 'team' }) + CONFIG);
  const ports = { http: await freePort(), team: await freePort(), other: await freePort() };
  const gateway = await startGatewayApiGateway(t, cp.xds, 'shop', { 8080: ports.http, 8081: ports.team, 8082: ports.other });
  await waitFor(
    () => `the gateway routing /api\n${gateway.log()}\n${cp.log()}`,
    async () => ((await request(ports.http, { path: '/api', headers: { host: 'shop.example.com' } }).catch(() => undefined))?.status === 200 ? true : undefined),
    60_000,
  );
  return { ports, v1, v2, cpLog: cp.log, monitoring: cp.monitoring };
}

test('a Gateway with an HTTPRoute CORS filter and ListenerSets, through rig controlplane and a rig proxy gateway', async (t) => {
  const s = await setup(t);
  await t.test('CORS: preflights answered by the gateway, actual requests get the CORS headers for allowed origins only', () => cors(s));
  await t.test('ListenerSet: an allowed namespace adds a listener that routes attach to; a clashing listener and a namespace not allowed are refused', () => listenerSets(s));
});

async function cors(s: Setup): Promise<void> {
  const call = (origin: string, method = 'GET', extra: Record<string, string> = {}) => request(s.ports.http, { path: '/api/items', method, headers: { host: 'shop.example.com', origin, ...extra } });
  const before = s.v1.requests.length;
  const preflight = await call('https://app.example.com', 'OPTIONS', { 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-token' });
  assert.equal(preflight.status, 200);
  assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal(preflight.headers['access-control-allow-methods'], 'GET,PUT');
  assert.equal(preflight.headers['access-control-allow-headers'], 'x-token');
  assert.equal(preflight.headers['access-control-max-age'], '600');
  assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
  // A wildcard host takes any number of labels to its left.
  const wildcard = await call('https://a.b.trusted.example', 'OPTIONS', { 'access-control-request-method': 'GET' });
  assert.equal(wildcard.headers['access-control-allow-origin'], 'https://a.b.trusted.example');
  // Another origin: answered by the gateway (200) without CORS headers, not forwarded (istiod: unmatchedPreflights IGNORE).
  const denied = await call('https://evil.example', 'OPTIONS', { 'access-control-request-method': 'PUT' });
  assert.equal(denied.status, 200);
  assert.equal(denied.headers['access-control-allow-origin'], undefined);
  assert.equal(s.v1.requests.length, before, 'no preflight reached the backend');

  const actual = await call('https://app.example.com');
  assert.equal(actual.status, 200);
  assert.equal(actual.json().server, 'v1');
  assert.equal(actual.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal(actual.headers['access-control-allow-credentials'], 'true');
  assert.equal(actual.headers['access-control-expose-headers'], 'x-upstream');
  const other = await call('https://evil.example');
  assert.equal(other.status, 200, 'the request itself is served: the browser enforces CORS');
  assert.equal(other.headers['access-control-allow-origin'], undefined);
}

async function listenerSets(s: Setup): Promise<void> {
  const team = await waitFor(
    () => `the ListenerSet's listener serving\n${s.cpLog()}`,
    async () => {
      const r = await request(s.ports.team, { path: '/t', headers: { host: 'team.example.com' } }).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    },
    60_000,
  );
  assert.equal(team.json().server, 'v2');
  assert.equal((await request(s.ports.team, { path: '/t', headers: { host: 'elsewhere.example.com' } })).status, 404, 'the listener takes its hostname only');
  // The Gateway's own listener on 8080 is untouched by the clashing one.
  assert.equal((await request(s.ports.http, { path: '/api', headers: { host: 'shop.example.com' } })).json().server, 'v1');
  await assert.rejects(request(s.ports.other, { path: '/' }), /ECONNREFUSED/, 'no listener from a namespace the Gateway does not allow');
  assert.match(s.cpLog(), /ListenerSet other\/refused.*Accepted=False \(NotAllowed\)/);
  assert.match(s.cpLog(), /ListenerSet team\/extra.*spec\.listeners\[1\].*Accepted=False \(HostnameConflict\)/);

  const configz = (await request(s.monitoring, { path: '/debug/configz' })).json<{ kind: string; metadata: { name: string; namespace: string }; status?: Record<string, unknown> }[]>();
  const status = (kind: string, ns: string, name: string) => configz.find((r) => r.kind === kind && r.metadata.namespace === ns && r.metadata.name === name)?.status as Record<string, unknown>;
  const cond = (st: Record<string, unknown>, type: string) => (st.conditions as { type: string; status: string; reason: string }[]).find((c) => c.type === type);
  const refused = cond(status('ListenerSet', 'other', 'refused'), 'Accepted');
  assert.deepEqual([refused?.status, refused?.reason], ['False', 'NotAllowed']);
  const extra = status('ListenerSet', 'team', 'extra');
  assert.equal(cond(extra, 'Accepted')?.status, 'True');
  const listeners = extra.listeners as { name: string; attachedRoutes: number; conditions: { type: string; status: string; reason: string }[] }[];
  assert.equal(listeners.find((l) => l.name === 'team-http')?.attachedRoutes, 1);
  assert.deepEqual(
    listeners.find((l) => l.name === 'clash')?.conditions.map((c) => [c.type, c.status, c.reason]),
    [
      ['Accepted', 'False', 'HostnameConflict'],
      ['Conflicted', 'True', 'HostnameConflict'],
      ['Programmed', 'False', 'HostnameConflict'],
    ],
  );
  const shop = status('Gateway', 'default', 'shop');
  assert.deepEqual([cond(shop, 'AttachedListenerSets')?.status, cond(shop, 'AttachedListenerSets')?.reason, shop.attachedListenerSets], ['True', 'ListenerSetsAttached', 1]);

  // rig get, as kubectl prints ListenerSets: the CRD's Accepted and Programmed columns.
  const table = await runRig(['get', 'lset', '-A', '--controlplane', `http://127.0.0.1:${s.monitoring}`]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAMESPACE +NAME +ACCEPTED +PROGRAMMED +AGE\nother +refused +False +False +\S+\nteam +extra +True +True +\S+\n$/);
}
