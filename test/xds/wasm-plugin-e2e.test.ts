// Istio WasmPlugins through the real control plane and two real `rig proxy` sidecars: plugins built
// from WebAssembly text at test time, referenced by file:// url. On productpage (selector): an
// AUTHN plugin answering 401 without an authorization header (Istio's basic auth example's
// behaviour), a SERVER-mode plugin adding a response header from its pluginConfig, and an oci://
// plugin with FAIL_OPEN whose image cannot be pulled (no registry at its address), left out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { addHeaderPlugin, denyPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
`;

const PLUGINS = (deny: string, header: string, noRegistry: number) => `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: basic-auth, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
  url: file://${deny}
  phase: AUTHN
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: greeting, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
  url: ${header}
  pluginName: greeting_root
  match: [{ mode: SERVER, ports: [{ number: 9080 }] }]
  pluginConfig: { greeting: hello }
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: remote, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
  url: oci://127.0.0.1:${noRegistry}/example/plugin:1.0
  failStrategy: FAIL_OPEN
`;

test('WasmPlugins on a sidecar: an AUTHN plugin denies without authorization, a SERVER plugin adds its pluginConfig as a header, an oci:// FAIL_OPEN plugin that cannot be pulled is left out', async (t) => {
  const app = await startUpstream('productpage');
  t.after(() => app.close());
  const dir = tempDir(t, 'rig-wasmplugin-');
  const deny = await writePlugin(dir, 'deny', denyPlugin);
  const header = await writePlugin(dir, 'header', addHeaderPlugin);
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-wasmplugin-', config: SERVICE + PLUGINS(deny, header, await freePort()), controlPlane: { debounceMs: 10 } });
  const outbound = await freePort();
  await startSidecar(t, mesh, { namespace: 'default', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  await startSidecar(t, mesh, { namespace: 'default', name: 'productpage', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });
  const viaSleep = (headers: Record<string, string> = {}) => request(outbound, { path: 'http://productpage.default.svc.cluster.local:9080/productpage', headers });

  const denied = await waitFor('the basic-auth plugin in productpage inbound answering', async () => {
    const r = await viaSleep().catch(() => undefined);
    return r && r.status === 401 ? r : undefined;
  });
  assert.equal(denied.headers['www-authenticate'], 'Basic realm="rig"');
  assert.equal(app.requests.length, 0, 'a denied request never reached productpage');

  const ok = await viaSleep({ authorization: 'Basic dTpw' });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-wasm-config'], '{"greeting":"hello"}');
  assert.equal(app.requests.at(-1)?.headers['x-wasm-path'], '/productpage');
});
