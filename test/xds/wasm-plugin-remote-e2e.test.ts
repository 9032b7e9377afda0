// WasmPlugins with remote urls through the real control plane and two real `rig proxy` sidecars,
// which fetch the modules as Istio's agent does: over https from a local server whose certificate a
// test CA signs (the productpage sidecar trusts it through NODE_EXTRA_CA_CERTS), and from a local OCI
// registry behind a token challenge, the image private, pulled with an imagePullSecret (a docker
// config in the control plane's credentials directory). A wrong sha256 fails closed (403, Istio's
// deny-all stand-in), FAIL_OPEN then leaves the plugin out; with the default pull policy a change of
// the WasmPlugin reuses the cached module, with Always it fetches it again.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { parseYaml } from './fixtures.ts';
import { listenLocal } from '../helpers/listen.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { compatImage, startTestRegistry } from '../helpers/oci-registry.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { addHeaderPlugin, buildPlugin, denyPlugin } from '../helpers/wasm-plugins.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
`;

const plugin = (name: string, spec: string) => `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: ${name}, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
${spec}`;

/** A test CA and a certificate for 127.0.0.1 it signs (openssl); returns the file paths. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  openssl('req', '-x509', '-sha256', '-nodes', '-days', '1', '-newkey', 'rsa:2048', '-subj', '/CN=rig test plugin CA', '-keyout', 'ca.key', '-out', 'ca.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-sha256', '-days', '1', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '1', '-in', 'server.csr', '-out', 'server.pem', '-extfile', 'san.ext');
  return { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') };
}

test('WasmPlugins fetched by the sidecar: https with a test CA, a private OCI image with imagePullSecret, sha256 mismatch fails closed, IfNotPresent reuses, Always fetches again', async (t) => {
  const header = await buildPlugin(addHeaderPlugin);
  const app = await startUpstream('productpage');
  t.after(() => app.close());

  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-wasm-remote-', config: SERVICE, controlPlane: { debounceMs: 10 } });
  const certs = makeCertificates(mesh.dir);
  let headerFetches = 0;
  /** While set, the module's answer waits for it (a fetch in progress). */
  let hold: Promise<void> | undefined;
  const server = https.createServer({ cert: fs.readFileSync(certs.cert), key: fs.readFileSync(certs.key) }, (req, res) => {
    if (req.url !== '/header.wasm') return void res.writeHead(404).end();
    headerFetches++;
    void (hold ?? Promise.resolve()).then(() => res.end(header));
  });
  const port = await listenLocal(server, t);
  t.after(() => server.closeAllConnections());
  const headerUrl = `https://127.0.0.1:${port}/header.wasm`;

  const registry = await startTestRegistry(t);
  const image = compatImage(await buildPlugin(denyPlugin), 'docker');
  registry.push('team/basic-auth', 'v1', image.manifest, image.blobs);
  registry.privateRepos.set('team/basic-auth', 'robot:s3cret');
  fs.mkdirSync(path.join(mesh.dir, 'credentials', 'regcred'), { recursive: true });
  fs.writeFileSync(path.join(mesh.dir, 'credentials', 'regcred', '.dockerconfigjson'), JSON.stringify({ auths: { [registry.host]: { username: 'robot', password: 's3cret' } } }));

  const outbound = await freePort();
  const env = { NODE_EXTRA_CA_CERTS: certs.ca, RIG_WASM_CACHE_DIR: path.join(mesh.dir, 'wasm-cache') };
  await startSidecar(t, mesh, { namespace: 'default', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  const productpage = await startSidecar(t, mesh, { namespace: 'default', name: 'productpage', env, args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });
  const viaSleep = (headers: Record<string, string> = {}) => request(outbound, { path: 'http://productpage.default.svc.cluster.local:9080/productpage', headers }).catch(() => undefined);
  const apply = (yaml: string) => mesh.store.apply(parseYaml(yaml));
  const greeting = (extra: string, config: string) => plugin('greeting', `  url: ${headerUrl}\n  pluginConfig: { greeting: ${config} }\n${extra}`);

  // https, no sha256, default pull policy (IfNotPresent for http).
  apply(greeting('', 'hello'));
  await waitFor('the https plugin adding its pluginConfig as a header', async () => {
    const r = await viaSleep();
    return r?.status === 200 && r.headers['x-wasm-config'] === '{"greeting":"hello"}' ? r : undefined;
  });
  assert.equal(headerFetches, 1, 'one fetch for every chain of the sidecar using it');

  // A changed WasmPlugin (new resource version): IfNotPresent reuses the cached module.
  apply(greeting('', 'hi'));
  await waitFor('the new pluginConfig', async () => ((await viaSleep())?.headers['x-wasm-config'] === '{"greeting":"hi"}' ? true : undefined));
  assert.equal(headerFetches, 1, 'IfNotPresent: not fetched again');

  // Always: a new resource version fetches the module again; while it is fetched, the plugin
  // started before serves (as Envoy keeps the previous extension config while the agent fetches).
  let release!: () => void;
  hold = new Promise((resolve) => (release = resolve));
  apply(greeting('  imagePullPolicy: Always\n', 'hey'));
  await waitFor('the fetch of the Always plugin', () => (headerFetches === 2 ? true : undefined));
  const during = await viaSleep();
  assert.equal(during?.status, 200);
  assert.equal(during?.headers['x-wasm-config'], '{"greeting":"hi"}', 'the previous plugin serves while the new one is fetched');
  release();
  hold = undefined;
  await waitFor('the pluginConfig of the Always plugin', async () => ((await viaSleep())?.headers['x-wasm-config'] === '{"greeting":"hey"}' ? true : undefined));
  assert.equal(headerFetches, 2, 'Always: fetched again (once) for the new resource version');

  // A private OCI image (a reference without a scheme: oci) pulled with the imagePullSecret.
  apply(plugin('basic-auth', `  url: ${registry.host}/team/basic-auth:v1\n  imagePullSecret: regcred\n  phase: AUTHN\n`));
  const denied = await waitFor('the basic-auth plugin pulled from the registry', async () => {
    const r = await viaSleep();
    return r?.status === 401 ? r : undefined;
  });
  assert.equal(denied.headers['www-authenticate'], 'Basic realm="rig"');
  assert.equal((await viaSleep({ authorization: 'Basic dTpw' }))?.status, 200);
  assert.ok(registry.requests.includes('/v2/team/basic-auth/manifests/v1'));
  // The registry credentials are in the extension config (ECDS) istiod sent, but in neither config dump.
  const dump = await fetch(`http://127.0.0.1:${(await productpage.started()).admin}/config_dump`).then((r) => r.text());
  assert.match(dump, /"ISTIO_META_WASM_IMAGE_PULL_SECRET": *"\[redacted\]"/);
  assert.doesNotMatch(dump, /s3cret/);
  const cpDump = await fetch(`http://127.0.0.1:${mesh.cp.ports.monitoring}/debug/config_dump?proxyID=productpage`).then((r) => r.text());
  assert.match(cpDump, /"ISTIO_META_WASM_IMAGE_PULL_SECRET": *"\[redacted\]"/, 'the control plane shows the extension config it sent, without the credentials');
  assert.match(cpDump, /EcdsConfigDump/);
  assert.doesNotMatch(cpDump, /s3cret/);

  // A sha256 the module does not have: fail closed (Istio's agent puts a deny-all RBAC filter in its place).
  const wrong = crypto.createHash('sha256').update('not the module').digest('hex');
  apply(plugin('pinned', `  url: ${headerUrl}\n  sha256: ${wrong}\n`));
  const closed = await waitFor('the pinned plugin failing closed', async () => {
    const r = await viaSleep({ authorization: 'Basic dTpw' });
    return r?.status === 403 ? r : undefined;
  });
  assert.equal(closed.body, 'RBAC: access denied');
  apply(plugin('pinned', `  url: ${headerUrl}\n  sha256: ${wrong}\n  failStrategy: FAIL_OPEN\n`));
  await waitFor('the pinned plugin left out with FAIL_OPEN', async () => ((await viaSleep({ authorization: 'Basic dTpw' }))?.status === 200 ? true : undefined));
  assert.ok(fs.readdirSync(env.RIG_WASM_CACHE_DIR).length >= 2, 'modules cached under RIG_WASM_CACHE_DIR');
});
