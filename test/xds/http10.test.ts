// Node metadata HTTP10 (Istio agent env ISTIO_META_HTTP10=1) makes every HTTP connection manager of
// that proxy accept HTTP/1.0, as istiod; without it the proxy answers HTTP/1.0 with 426, as Envoy.
// Real `rig proxy` processes built from flags, the metadata from their environment, real curl.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { LISTENER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { freePort } from '../../src/local/ports.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { startUpstream } from '../proxy/harness.ts';
import { buildPush, explicitSidecar, gatewayProxy, parseYaml, podSidecar } from './fixtures.ts';

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function hcms(listeners: EnvoyJson[]): EnvoyJson[] {
  const out: EnvoyJson[] = [];
  JSON.stringify(listeners, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as EnvoyJson)['@type'] === HCM_TYPE) out.push(v as EnvoyJson);
    return v;
  });
  return out;
}

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: 9080 }, { name: web, port: 9090 }] }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ['*'] }]
`;

test('HTTP10 node metadata sets accept_http_10 on every HCM (inbound, outbound, http proxy, gateway)', () => {
  const proxies: Proxy[] = [
    explicitSidecar('httpbin-0', 'foo', { app: 'httpbin' }, 'httpbin', [{ port: 9080, name: 'http' }]),
    podSidecar('sleep-0', 'foo', { app: 'sleep' }, 'sleep', [{ port: 9080, name: 'http' }], '10.0.0.9'),
    gatewayProxy(),
  ];
  const push = buildPush(parseYaml(CONFIG), proxies);
  for (const proxy of proxies) {
    const without = hcms(GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined));
    assert.ok(without.length > 0, `${proxy.id} has HCMs`);
    for (const h of without) assert.equal((h.http_protocol_options as EnvoyJson | undefined)?.accept_http_10, undefined, `${proxy.id} ${String(h.stat_prefix)}`);
    proxy.metadata.HTTP10 = '1';
    const withIt = hcms(GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined));
    assert.equal(withIt.length, without.length);
    for (const h of withIt) assert.equal((h.http_protocol_options as EnvoyJson).accept_http_10, true, `${proxy.id} ${String(h.stat_prefix)}`);
    // Options the HCM already had are kept (the explicit http_proxy listener takes absolute URLs).
    const httpProxy = withIt.find((h) => h.stat_prefix === 'outbound_http_proxy');
    if (httpProxy) assert.equal((httpProxy.http_protocol_options as EnvoyJson).allow_absolute_url, true);
    // Istio compares with "1" only.
    proxy.metadata.HTTP10 = 'true';
    for (const h of hcms(GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined))) assert.equal((h.http_protocol_options as EnvoyJson | undefined)?.accept_http_10, undefined);
  }
});

const curl = promisify(execFile);

async function http10(args: string[]): Promise<string> {
  const { stdout } = await curl('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '--http1.0', ...args]);
  return stdout;
}

test('curl --http1.0 through sidecars: 426 without ISTIO_META_HTTP10, 200 with it (outbound and inbound)', async (t) => {
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const mesh = await startMeshControlPlane(t, {
    dirPrefix: 'rig-http10-',
    config: 'apiVersion: v1\nkind: Service\nmetadata: { name: httpbin, namespace: foo }\nspec: { selector: { app: httpbin }, ports: [{ name: http, port: 9080 }] }\n',
    controlPlane: { debounceMs: 10 },
  });
  const inbound = await freePort();
  const [plainOut, http10Out] = [await freePort(), await freePort()];
  const env = { ISTIO_META_HTTP10: '1' };
  await startSidecar(t, mesh, { namespace: 'foo', name: 'httpbin', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${inbound}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())], env });
  await startSidecar(t, mesh, { namespace: 'foo', name: 'sleep', args: ['--outbound-port', String(plainOut)] });
  await startSidecar(t, mesh, { namespace: 'foo', name: 'legacy', args: ['--outbound-port', String(http10Out)], env });

  const url = 'http://httpbin.foo.svc.cluster.local:9080/hello';
  const ready = async (port: number) => {
    const { stdout } = await curl('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', '-x', `http://127.0.0.1:${port}`, url]).catch(() => ({ stdout: '' }));
    return stdout === '200' ? true : undefined;
  };
  await waitFor('HTTP/1.1 through the plain client sidecar', () => ready(plainOut));
  await waitFor('HTTP/1.1 through the HTTP10 client sidecar', () => ready(http10Out));

  assert.equal(await http10(['-x', `http://127.0.0.1:${plainOut}`, url]), '426');
  const before = app.requests.length;
  assert.equal(await http10(['-x', `http://127.0.0.1:${http10Out}`, url]), '200');
  assert.equal(app.requests.length, before + 1);
  // The server sidecar's inbound HCM (plaintext is accepted under the default PERMISSIVE).
  assert.equal(await http10([`http://127.0.0.1:${inbound}/hello`]), '200');
});
