// A VirtualService directResponse larger than Envoy's 4096-byte default through a real sidecar: the
// control plane sends Istio's 1 MiB max_direct_response_body_size_bytes, so the proxy takes the
// route configuration (it would NACK it with the default) and answers with the whole body.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request } from '../proxy/harness.ts';

const BODY = 'direct response '.repeat(640); // 10240 bytes

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: httpbin, namespace: foo }
spec:
  hosts: [httpbin.foo.svc.cluster.local]
  http:
  - match: [{ uri: { prefix: /big } }]
    directResponse: { status: 200, body: { string: "${BODY}" } }
`;

test('a 10 KB VirtualService directResponse is served through a sidecar', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-direct-', config: CONFIG, controlPlane: { debounceMs: 10 } });
  const out = await freePort();
  const sidecar = await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(out)] });
  const r = await waitFor(
    () => `the direct response through the sidecar\n${sidecar.log()}`,
    async () => {
      const got = await request(out, { path: 'http://httpbin.foo.svc.cluster.local:9080/big', headers: { host: 'httpbin.foo.svc.cluster.local:9080' } }).catch(() => undefined);
      return got?.status === 200 ? got : undefined;
    },
  );
  assert.equal(Buffer.byteLength(r.body), 10240);
  assert.equal(r.body, BODY);
  assert.doesNotMatch(sidecar.log(), /maximum is/);
});
