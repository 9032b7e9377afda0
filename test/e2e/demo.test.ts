// `rig demo`, the README's first command: Bookinfo ready behind the ingress gateway, the printout
// of where to look, traffic from the generator reaching productpage, sidecar metrics, and a
// clean stop that leaves nothing running.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ingressGatewayPort, leftovers, startMesh, type Mesh } from '../local/mesh-harness.ts';
import { eventually, request, reviewsServedBy } from './bookinfo-mesh.ts';

describe('rig demo', () => {
  let mesh: Mesh;
  let gatewayPort = 0;
  before(async () => {
    mesh = await startMesh('demo', ['--rate', '5']);
    gatewayPort = await ingressGatewayPort(mesh, 8080, 'the demo ready');
  });
  after(async () => {
    await mesh?.stop();
  });

  it('prints where to look', async () => {
    const out = await eventually('the printout', async () => (mesh.output().includes('Bookinfo is up') ? mesh.output() : undefined));
    assert.match(out, new RegExp(`Open http://127\\.0\\.0\\.1:${gatewayPort}/productpage`));
    assert.match(out, /productpage-v1-0 +http:\/\/127\.0\.0\.1:\d+\/stats\/prometheus/);
    assert.match(out, /all 7 workloads and gateways ready in [\d.]+s/);
  });

  it('serves Bookinfo through the ingress gateway, with every reviews version answering', async () => {
    const seen = new Set<string>();
    await eventually('v1, v2 and v3 all answer', async () => {
      const page = await request(gatewayPort, '/productpage');
      assert.equal(page.status, 200);
      seen.add(reviewsServedBy(page.body));
      return ['reviews-v1', 'reviews-v2', 'reviews-v3'].every((v) => seen.has(v)) ? true : undefined;
    });
  });

  it('generates traffic that reaches productpage and shows in the sidecar metrics', async () => {
    await eventually('traffic in productpage logs', async () => ((await mesh.rig(['logs', 'productpage-v1'])).stdout.match(/GET \/productpage 200/g)?.length ?? 0) >= 5 ? true : undefined);
    const stats = mesh.process('productpage-v1-0')!.ports.stats!;
    const text = (await request(stats, '/stats/prometheus')).body;
    // Requests the sidecar passed to the app, and on to details (Istio's standard metrics). Envoy's
    // cluster stats are not kept: Istio's bootstrap keeps them only when a proxy asks (proxyStatsMatcher).
    const series = (reporter: string, workload: string) => text.split('\n').some((l) => l.startsWith('istio_requests_total{') && l.includes(`reporter="${reporter}"`) && l.includes(`destination_workload="${workload}"`) && l.includes('response_code="200"') && !l.endsWith(' 0'));
    assert.ok(series('destination', 'productpage-v1'), text);
    assert.ok(series('source', 'details-v1'), text);
    assert.doesNotMatch(text, /^envoy_cluster_upstream_rq\{[^}]*cluster_name="(in|out)bound/m);
  });

  it('configures no tracer, since it runs no collector: no proxy warns of the spans it would drop', async () => {
    const admin = mesh.process('productpage-v1-0')!.ports.admin!;
    const dump = (await request(admin, '/config_dump')).body;
    assert.match(dump, /envoy\.filters\.network\.http_connection_manager/);
    assert.doesNotMatch(dump, /envoy\.tracers\./);
    assert.doesNotMatch(mesh.output(), /span export failed/);
  });

  it('stops everything on SIGTERM', async () => {
    mesh.child.kill('SIGTERM');
    await new Promise((r) => mesh.child.once('exit', r));
    assert.deepEqual(leftovers(mesh.stateDir), []);
  });
});
