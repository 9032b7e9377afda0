// A WasmPlugin changed in place, through the real control plane and a real `rig proxy` sidecar, as
// istiod and Envoy do it over ECDS: the listener names the plugin's config
// (extensions.istio.io/wasmplugin/default.greeting), which the control plane serves as a
// TypedExtensionConfig; a new pluginConfig is pushed over ECDS alone (the listeners, which only name
// it, are not sent again), and the next request on the client's existing keep-alive connection runs
// the new config, without the listener being replaced or the connection drained.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { runRig } from '../helpers/cli.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { addHeaderPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { startUpstream } from '../proxy/harness.ts';
import { parseYaml } from './fixtures.ts';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
`;

/** On the sleep sidecar's outbound (CLIENT): the plugin answering with its pluginConfig in x-wasm-config. */
const greeting = (file: string, word: string) => `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: greeting, namespace: default }
spec:
  selector: { matchLabels: { app: sleep } }
  url: file://${file}
  match: [{ mode: CLIENT }]
  pluginConfig: { greeting: ${word} }
`;

interface Dump {
  configs: { '@type': string; dynamic_listeners?: { name: string; active_state?: { version_info: string } }[]; ecds_filters?: { version_info: string; ecds_filter: { name: string } }[] }[];
}

test('a changed WasmPlugin reaches the next request on an existing keep-alive connection over ECDS, without a listener push or drain', async (t) => {
  const app = await startUpstream('productpage');
  t.after(() => app.close());
  const file = await writePlugin(tempDir(t, 'rig-wasm-ecds-'), 'header', addHeaderPlugin);
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-wasm-ecds-', config: SERVICE + greeting(file, 'hello'), controlPlane: { debounceMs: 10 } });
  const outbound = await freePort();
  const sleep = await startSidecar(t, mesh, { namespace: 'default', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  await startSidecar(t, mesh, { namespace: 'default', name: 'productpage', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = () =>
    new Promise<{ status: number; greeting: string | undefined; clientPort: number; connection: string | undefined }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: outbound, path: 'http://productpage.default.svc.cluster.local:9080/productpage', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, greeting: res.headers['x-wasm-config'] as string | undefined, clientPort: req.socket!.localPort!, connection: res.headers.connection }));
      });
      req.on('error', reject);
    });
  const dump = async () => (await fetch(`http://127.0.0.1:${(await sleep.started()).admin}/config_dump`).then((r) => r.json())) as Dump;
  const listenerVersions = (d: Dump) => JSON.stringify(d.configs.flatMap((c) => c.dynamic_listeners ?? []).map((l) => [l.name, l.active_state?.version_info]));
  const ecds = (d: Dump) => d.configs.flatMap((c) => c.ecds_filters ?? []);

  const first = await waitFor('the plugin on the outbound path', async () => {
    const r = await get().catch(() => undefined);
    return r?.status === 200 && r.greeting ? r : undefined;
  });
  assert.equal(first.greeting, '{"greeting":"hello"}');
  const before = await dump();
  assert.deepEqual(
    ecds(before).map((e) => e.ecds_filter.name),
    ['extensions.istio.io/wasmplugin/default.greeting'],
    'the plugin config came over ECDS, named as istiod names it',
  );
  // What istioctl shows: proxy-config ecds (name and type) and proxy-status's ECDS column.
  const admin = `http://127.0.0.1:${(await sleep.started()).admin}`;
  const table = await runRig(['proxy-config', 'ecds', '--admin', admin]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^ECDS NAME\s+TYPE\nextensions\.istio\.io\/wasmplugin\/default\.greeting\s+envoy\.extensions\.filters\.http\.wasm\.v3\.Wasm\n$/);
  const status = await runRig(['proxy-status', '--controlplane', `http://127.0.0.1:${mesh.cp.ports.monitoring}`]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^NAME\s+CLUSTER\s+CDS\s+LDS\s+EDS\s+RDS\s+ECDS\s+ISTIOD/);
  assert.match(status.stdout, /\nsleep\S*\s+\S+\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s/, 'the sleep sidecar ACKed its ECDS config');

  mesh.store.apply(parseYaml(greeting(file, 'bonjour')));
  const second = await waitFor('the new pluginConfig', async () => {
    const r = await get();
    return r.greeting === '{"greeting":"bonjour"}' ? r : undefined;
  });
  assert.equal(second.status, 200);
  assert.equal(second.clientPort, first.clientPort, 'on the same keep-alive connection');
  assert.notEqual(second.connection, 'close', 'not drained');
  const after = await dump();
  assert.equal(listenerVersions(after), listenerVersions(before), 'no listener was pushed: each still at the version it had');
  assert.notEqual(ecds(after)[0].version_info, ecds(before)[0].version_info, 'a new ECDS version');
});
