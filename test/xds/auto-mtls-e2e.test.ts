// Auto mTLS through the real control plane (with its CA) and two real `rig proxy` processes: the
// server workload DISABLEs mTLS on its port (workload portLevelMtls under a STRICT namespace), so
// the client sidecar must talk plaintext to it (EDS marks the endpoint tlsMode disabled); switching
// the port back to STRICT makes the client use mTLS again (the server sees its SPIFFE identity).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { request, startUpstream } from '../proxy/harness.ts';
import { parseYaml } from './fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const CONFIG = (portMode: string) => `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: foo }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  portLevelMtls: { "9080": { mode: ${portMode} } }
`;

test('auto mTLS: a client sidecar talks plaintext to a port whose PeerAuthentication is DISABLE, mTLS once it is STRICT', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-automtls-', config: CONFIG('DISABLE'), controlPlane: { debounceMs: 10 } });
  const { store } = mesh;
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const outbound = await freePort();
  await startSidecar(t, mesh, { namespace: 'foo', name: 'httpbin', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });
  await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  const viaSleep = () => request(outbound, { path: 'http://httpbin.foo.svc.cluster.local:9080/hello' });
  const xfcc = (r: { body: string }) => (JSON.parse(r.body) as { headers: Record<string, string | undefined> }).headers['x-forwarded-client-cert'];
  // DISABLE on the port: plaintext from the client sidecar (no client identity reaches the server).
  const plain = await waitFor('a request through the client sidecar', async () => {
    const r = await viaSleep();
    return r.status === 200 ? r : undefined;
  });
  assert.equal(xfcc(plain), undefined);
  // STRICT on the port: the client switches to mTLS and the server sees its SPIFFE identity.
  store.apply(parseYaml(CONFIG('STRICT')));
  const mtls = await waitFor('mTLS after STRICT', async () => {
    const r = await viaSleep();
    return r.status === 200 && xfcc(r) ? r : undefined;
  });
  assert.match(xfcc(mtls)!, /URI=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/sleep/);
});
