// An EnvoyFilter LISTENER_FILTER patch through the real control plane and real `rig proxy`
// sidecars: the PROXY protocol listener filter ADDed to the sleep sidecar's outbound listeners
// (as istiod's patchListenerFilters appends it), after which the sidecar reads a PROXY header
// before the request on a connection to its outbound port, and a connection without one is refused.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream } from '../proxy/harness.ts';

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: proxy-protocol, namespace: default }
spec:
  workloadSelector: { labels: { app: sleep } }
  configPatches:
    - applyTo: LISTENER_FILTER
      match: { context: SIDECAR_OUTBOUND }
      patch:
        operation: ADD
        value:
          name: envoy.filters.listener.proxy_protocol
          typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol }
`;

/** What comes back on a raw connection to `port` after writing `data` (the connection closed by the server). */
function exchange(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
  });
}

const REQUEST = 'GET http://productpage.default.svc.cluster.local:9080/productpage HTTP/1.1\r\nHost: productpage.default.svc.cluster.local:9080\r\nConnection: close\r\n\r\n';

test('an EnvoyFilter LISTENER_FILTER ADD of proxy_protocol: the sidecar reads the PROXY header before the request; without one the connection is refused', async (t) => {
  const app = await startUpstream('productpage');
  t.after(() => app.close());
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-envoyfilter-lf-', config: CONFIG, controlPlane: { debounceMs: 10 } });
  const outbound = await freePort();
  await startSidecar(t, mesh, { namespace: 'default', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  await startSidecar(t, mesh, { namespace: 'default', name: 'productpage', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });

  const proxied = await waitFor('productpage through the PROXY-protocol outbound listener', async () => {
    const r = await exchange(outbound, `PROXY TCP4 198.51.100.7 127.0.0.1 40000 ${outbound}\r\n${REQUEST}`);
    return r.startsWith('HTTP/1.1 200') ? r : undefined;
  });
  assert.match(proxied, /^HTTP\/1\.1 200/);
  assert.equal(app.requests.length, 1);
  const plain = await exchange(outbound, REQUEST);
  assert.doesNotMatch(plain, /^HTTP\/1\.1 200/, 'a request without a PROXY header does not go through');
  assert.equal(app.requests.length, 1);
});
