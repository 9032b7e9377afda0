// An Istio WasmPlugin of type NETWORK through the real control plane and a real `rig proxy` sidecar:
// the plugin (WebAssembly text built at test time, file:// url) runs as envoy.filters.network.wasm
// in the sidecar's inbound TCP chain and rewrites the bytes both ways between a plain TCP client and
// the application (an echo server): "up:" before what the client sends, "down:" before what comes back.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startTcpEcho } from '../helpers/listen.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { networkPlugin, writePlugin } from '../helpers/wasm-plugins.ts';

const CONFIG = (plugin: string) => `
apiVersion: v1
kind: Service
metadata: { name: db, namespace: default }
spec: { selector: { app: db }, ports: [{ name: tcp, port: 3306 }] }
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: prefix, namespace: default }
spec:
  selector: { matchLabels: { app: db } }
  url: file://${plugin}
  type: NETWORK
  match: [{ mode: SERVER, ports: [{ number: 3306 }] }]
`;

/** Connects, sends `payload`, resolves with what came back once `want` bytes did (or the connection closed). */
function roundTrip(port: number, payload: string, want: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(payload));
    let got = '';
    c.on('data', (d) => {
      got += d;
      if (got.length >= want) c.end();
    });
    c.on('error', () => resolve(got));
    c.on('close', () => resolve(got));
  });
}

test('a NETWORK WasmPlugin rewrites the bytes of an inbound TCP connection on a sidecar', async (t) => {
  const echoPort = await startTcpEcho(t);
  const dir = tempDir(t, 'rig-wasm-network-');
  const plugin = await writePlugin(dir, 'network', networkPlugin);
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-wasm-network-', config: CONFIG(plugin), controlPlane: { debounceMs: 10 } });
  const inbound = await freePort();
  await startSidecar(t, mesh, { namespace: 'default', name: 'db', args: ['--workload-port', '3306/tcp/TCP', '--inbound-port', `3306=${inbound}`, '--app-port', `3306=${echoPort}`, '--outbound-port', String(await freePort())] });

  const expected = 'down:up:abcd';
  const got = await waitFor('the plugin in the inbound TCP chain', async () => {
    const r = await roundTrip(inbound, 'abcd', expected.length);
    return r === expected ? r : undefined;
  });
  assert.equal(got, expected);
});
