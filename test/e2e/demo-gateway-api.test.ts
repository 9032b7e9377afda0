// `rig demo --gateway-api`, Istio's Getting Started with the Kubernetes Gateway API: Bookinfo behind
// a Gateway of class istio and its HTTPRoute (the gateway bookinfo-gateway-istio that rig up runs for
// it), then the Gateway API versions of the traffic tasks: an HTTPRoute whose parent is the reviews
// Service routes the sidecars' calls (all to v1, then jason to v2), and a clean stop.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { leftovers, startMesh, type Mesh } from '../local/mesh-harness.ts';
import { eventually, NETWORKING, request, reviewsServedBy } from './bookinfo-mesh.ts';

const GATEWAY_API = path.join(NETWORKING, '../gateway-api');

describe('rig demo --gateway-api', () => {
  let mesh: Mesh;
  let port = 0;
  before(async () => {
    mesh = await startMesh('demo', ['--gateway-api', '--no-traffic'], { gatewayPorts: [80] });
    const s = await mesh.waitFor((s) => !!s.readyAt, 'the demo ready', 60_000);
    port = s.processes.find((p) => p.name === 'bookinfo-gateway-istio')!.ports.gateway!['80'];
  });
  after(async () => {
    await mesh?.stop();
  });

  it("runs the Gateway's gateway as Istio's automated deployment names it, and no istio-ingressgateway", () => {
    const names = mesh.status()!.processes.map((p) => p.name);
    assert.ok(names.includes('bookinfo-gateway-istio'), names.join(', '));
    assert.ok(!names.includes('istio-ingressgateway'), names.join(', '));
    assert.match(mesh.output(), new RegExp(`Open http://127\\.0\\.0\\.1:${port}/productpage`));
    assert.match(mesh.output(), /rig apply -f examples\/bookinfo\/gateway-api\/route-reviews-jason-v2\.yaml/);
  });

  it("serves the HTTPRoute's paths through the gateway, and nothing else", async () => {
    const seen = new Set<string>();
    await eventually('v1, v2 and v3 all answer', async () => {
      const page = await request(port, '/productpage');
      assert.equal(page.status, 200);
      seen.add(reviewsServedBy(page.body));
      return ['reviews-v1', 'reviews-v2', 'reviews-v3'].every((v) => seen.has(v)) ? true : undefined;
    });
    assert.equal((await request(port, '/api/v1/products')).status, 200);
    assert.equal((await request(port, '/details/0')).status, 404, 'no rule of the HTTPRoute matches');
  });

  it('routes reviews by an HTTPRoute whose parent is the reviews Service: all to v1, then jason to v2', async () => {
    const applied = await mesh.rig(['apply', '-f', path.join(GATEWAY_API, 'route-reviews-v1.yaml')]);
    assert.equal(applied.code, 0, applied.stderr);
    await eventually('only reviews-v1', async () => {
      const served = new Set<string>();
      for (let i = 0; i < 6; i++) served.add(reviewsServedBy((await request(port, '/productpage')).body));
      return served.size === 1 && served.has('reviews-v1') ? true : undefined;
    }, 20_000);
    assert.equal((await mesh.rig(['apply', '-f', path.join(GATEWAY_API, 'route-reviews-jason-v2.yaml')])).code, 0);
    const login = await request(port, '/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=jason&passwd=jason' });
    const cookie = String(login.headers['set-cookie'] ?? '').split(';')[0];
    assert.ok(cookie, 'a session cookie');
    await eventually('jason sees reviews-v2', async () => (reviewsServedBy((await request(port, '/productpage', { headers: { cookie } })).body) === 'reviews-v2' ? true : undefined), 20_000);
    for (let i = 0; i < 4; i++) assert.equal(reviewsServedBy((await request(port, '/productpage')).body), 'reviews-v1', 'everyone else still v1');
  });

  it("rig get lists the Gateway API resources with the status Istio would write", async () => {
    const gtw = await mesh.rig(['get', 'gtw']);
    assert.equal(gtw.code, 0, gtw.stderr);
    assert.match(gtw.stdout, /^NAME +CLASS +ADDRESS +PROGRAMMED +AGE\nbookinfo-gateway +istio +127\.0\.0\.1 +True +\d+s\n$/);
    assert.match((await mesh.rig(['get', 'gatewayclasses'])).stdout, /^istio +istio\.io\/gateway-controller +True +<unknown>$/m, 'the built-in class');
    const broken = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ratings }
spec:
  parentRefs: [{ group: "", kind: Service, name: ratings, port: 9080 }]
  rules: [{ backendRefs: [{ name: ratings-v9, port: 9080 }] }]
`;
    assert.equal((await mesh.rig(['apply', '-f', '-'], broken)).code, 0);
    const route = await eventually('the route listed', async () => {
      const r = await mesh.rig(['get', 'httproute', 'ratings', '-o', 'json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as { status: { parents: { conditions: { type: string; status: string; reason: string }[] }[] } }) : undefined;
    });
    const resolved = route.status.parents[0].conditions.find((c) => c.type === 'ResolvedRefs');
    assert.deepEqual([resolved?.status, resolved?.reason], ['False', 'BackendNotFound']);
    assert.equal((await mesh.rig(['delete', '-f', '-'], broken)).code, 0);
    const missing = await mesh.rig(['get', 'httproute', 'nope']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /httproutes\.gateway\.networking\.k8s\.io "nope" not found in namespace default/);
  });

  it('stops everything on SIGTERM', async () => {
    mesh.child.kill('SIGTERM');
    await new Promise((r) => mesh.child.once('exit', r));
    assert.deepEqual(leftovers(mesh.stateDir), []);
  });
});
