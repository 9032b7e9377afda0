// Istio's "Egress Gateways" task through the real processes of `rig up`: a Gateway selecting
// `istio: egressgateway` starts the egress gateway, and the VirtualService of
// examples/bookinfo/tasks/egress-gateway routes the mesh's calls to edition.cnn.com to
// istio-egressgateway.istio-system.svc.cluster.local (the Service `rig up` defines for it, as
// Istio's installation does), which sends them to the host. A local HTTP server stands in for it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import type { Mesh } from '../local/mesh-harness.ts';
import { clusterCounter, eventually, request, startEgressGatewayTask } from './bookinfo-mesh.ts';
import { listenLocal } from '../helpers/listen.ts';

const TASK = path.join(REPO_ROOT, 'examples/bookinfo/tasks/egress-gateway');

describe('Istio task: egress gateway for HTTP traffic', () => {
  let server: http.Server;
  let mesh: Mesh;
  const seen: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.headers.host} ${req.url}`);
      res.end('cnn stand-in');
    });
    const port = await listenLocal(server);
    const se = readFileSync(path.join(TASK, 'service-entry-local-standin.yaml'), 'utf8').replace('http-port: 18080', `http-port: ${port}`);
    mesh = await startEgressGatewayTask(path.join(TASK, 'egress-gateway-cnn.yaml'), 80, se);
  });
  after(async () => {
    await mesh?.stop();
    server?.close();
    server?.closeAllConnections();
  });

  const gatewayRequests = () => clusterCounter(mesh, 'istio-egressgateway', 'upstream_rq_total', 'outbound|80||edition.cnn.com');

  it('a workload calling http://edition.cnn.com/politics goes through the egress gateway', async () => {
    // rig up gives the sidecar this port for the replica's life (a restart keeps it). It once stayed
    // refused for good: the port, probed free by rig up, was held for a moment by another socket
    // when the sidecar bound it; a listener whose address is in use now retries until it is free.
    const outbound = mesh.process('productpage-v1-0')!.ports.outbound!;
    const res = await eventually('edition.cnn.com answered through the egress gateway', async () => {
      const r = await request(outbound, 'http://edition.cnn.com/politics', { headers: { host: 'edition.cnn.com' }, timeoutMs: 3000 });
      return r.status === 200 && (await gatewayRequests()) > 0 ? r : undefined;
    });
    assert.equal(res.body, 'cnn stand-in');
    const before_ = await gatewayRequests();
    const n = seen.length;
    for (let i = 0; i < 3; i++) assert.equal((await request(outbound, 'http://edition.cnn.com/politics', { headers: { host: 'edition.cnn.com' } })).status, 200);
    assert.equal((await gatewayRequests()) - before_, 3, 'every call passed through the egress gateway');
    assert.deepEqual(seen.slice(n), Array(3).fill('edition.cnn.com /politics'));
  });
});
