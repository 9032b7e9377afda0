// VirtualService retries (attempts, perTryTimeout, retryOn) through the real processes of
// `rig up`: a local HTTP server declared by a ServiceEntry fails or stalls on command, a
// workload's sidecar is reached as the app reaches it (HTTP_PROXY, absolute-form), and the
// attempts are counted both at the server and in the sidecar's stats (upstream_rq_retry*).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEMO_PATHS } from '../../src/local/demo.ts';
import { startMesh, type Mesh } from '../local/mesh-harness.ts';
import { CLUSTER_STATS_MESH_CONFIG, clusterCounter, eventually, request } from './bookinfo-mesh.ts';

const HOST = 'flaky.example.com';

describe('Istio retries: VirtualService attempts, perTryTimeout, retryOn', () => {
  let server: http.Server;
  let port = 0;
  let mesh: Mesh;
  // What the server does with each request it receives, in order: a status, or 'stall' (no answer).
  let script: (number | 'stall')[] = [];
  let seen = 0;

  before(async () => {
    server = http.createServer((req, res) => {
      seen++;
      const next = script.shift() ?? 200;
      if (next === 'stall') return void setTimeout(() => res.destroyed || res.end('late'), 5000).unref();
      res.writeHead(next).end(next === 200 ? 'ok' : 'failed');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    mesh = await startMesh('up', ['-f', ...DEMO_PATHS, '--mesh-config', CLUSTER_STATS_MESH_CONFIG]);
    await mesh.waitFor((s) => !!s.readyAt, 'every process ready', 60_000);
    const applied = await mesh.rig(
      ['apply', '-f', '-'],
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: flaky
spec:
  hosts:
  - ${HOST}
  ports:
  - number: ${port}
    name: http
    protocol: HTTP
  resolution: STATIC
  location: MESH_EXTERNAL
  endpoints:
  - address: 127.0.0.1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: flaky
spec:
  hosts:
  - ${HOST}
  http:
  - route:
    - destination:
        host: ${HOST}
    retries:
      attempts: 3
      perTryTimeout: 500ms
      retryOn: gateway-error,connect-failure,refused-stream
`,
    );
    assert.equal(applied.code, 0, applied.stderr);
    // Until the route is in force, the sidecar passes the host through without retries.
    await eventually('the retry route in force', async () => {
      script = [503];
      const r = await call();
      script = [];
      return r.status === 200 ? true : undefined;
    });
  });
  after(async () => {
    await mesh?.stop();
    server?.close();
    server?.closeAllConnections();
  });

  const call = () => request(mesh.process('productpage-v1-0')!.ports.outbound!, `http://${HOST}:${port}/status`, { headers: { host: `${HOST}:${port}` } });
  const counter = (name: string) => clusterCounter(mesh, 'productpage-v1-0', name, `outbound|${port}||${HOST}`);
  const counters = async () => ({ retry: await counter('upstream_rq_retry'), success: await counter('upstream_rq_retry_success'), exceeded: await counter('upstream_rq_retry_limit_exceeded') });

  it('a 503 then a stalled attempt are retried; the third attempt answers 200', async () => {
    const before_ = await counters();
    script = [503, 'stall', 200];
    seen = 0;
    const r = await call();
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(seen, 3);
    const now = await counters();
    assert.equal(now.retry - before_.retry, 2);
    assert.equal(now.success - before_.success, 1);
    assert.equal(now.exceeded - before_.exceeded, 0);
  });

  it('gives up after 1 + 3 attempts with the last 503; a 500 is not a gateway error and is not retried', async () => {
    let before_ = await counters();
    script = [503, 503, 503, 503, 200];
    seen = 0;
    const r = await call();
    assert.equal(r.status, 503);
    assert.equal(seen, 4);
    let now = await counters();
    assert.equal(now.retry - before_.retry, 3);
    assert.equal(now.exceeded - before_.exceeded, 1);

    before_ = now;
    script = [500, 200];
    seen = 0;
    assert.equal((await call()).status, 500);
    assert.equal(seen, 1);
    now = await counters();
    assert.equal(now.retry - before_.retry, 0);
  });
});
