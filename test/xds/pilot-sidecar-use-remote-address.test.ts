// istiod's PILOT_SIDECAR_USE_REMOTE_ADDRESS: sidecar outbound HTTP connection managers set
// use_remote_address (the sender, the local app, is then an internal address whose x-envoy-* headers
// are trusted), as istiod's buildSidecarOutboundHTTPListenerOpts; the explicit-mode http_proxy
// listener keeps it off, as istiod's HTTP proxy listener. The switch is read once per process, so
// this file sets it before anything is generated.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { runRig } from '../helpers/cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, parseYaml, podSidecar } from './fixtures.ts';

process.env.PILOT_SIDECAR_USE_REMOTE_ADDRESS = 'true';

const CONFIG = parseYaml(`
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ port: 9080, name: http }, { port: 9090, name: sniffed }] }
`);

function hcmsByStat(proxy: ReturnType<typeof podSidecar>): Map<string, EnvoyJson> {
  const push = buildPush(CONFIG, [proxy]);
  const out = new Map<string, EnvoyJson>();
  for (const l of GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined)) {
    assertEnvoyResource(LISTENER_TYPE, l);
    for (const c of (l.filter_chains as EnvoyJson[] | undefined) ?? []) {
      for (const f of c.filters as EnvoyJson[]) if (f.name === 'envoy.filters.network.http_connection_manager') out.set(`${String(l.name)} ${String((f.typed_config as EnvoyJson).stat_prefix)}`, f.typed_config as EnvoyJson);
    }
  }
  return out;
}

test('PILOT_SIDECAR_USE_REMOTE_ADDRESS=true: use_remote_address on sidecar outbound HCMs (HTTP and sniffed ports), not on inbound or the http_proxy listener', () => {
  const pod = hcmsByStat(podSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }], '10.1.0.5'));
  const outbound = [...pod].filter(([k]) => / outbound_/.test(k));
  assert.ok(outbound.some(([k]) => k.includes('_9080')) && outbound.some(([k]) => k.includes('_9090')), [...pod.keys()].join(', '));
  for (const [k, h] of outbound) assert.equal(h.use_remote_address, true, k);
  const inbound = [...pod].filter(([k]) => / inbound_/.test(k));
  assert.ok(inbound.length > 0);
  for (const [k, h] of inbound) assert.equal(h.use_remote_address, undefined, k);

  const explicit = hcmsByStat(explicitSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080 }], { upstreamPorts: { 'reviews.default.svc.cluster.local:9080': 29998 } }));
  const byPrefix = (p: string) => [...explicit].filter(([k]) => k.includes(` ${p}`)).map(([, h]) => h);
  assert.deepEqual(byPrefix('outbound_http_proxy').map((h) => h.use_remote_address), [undefined]);
  assert.ok(byPrefix('outbound_').some((h) => h.use_remote_address === true), 'the per-upstream listener');
});

test('a PILOT_SIDECAR_USE_REMOTE_ADDRESS that is not a boolean stops the control plane with a clear error', async (t) => {
  const dir = tempDir(t, 'rig-pilot-remote-address-bad-');
  const r = await runRig(['controlplane', '--config', dir, '--xds-port', '0', '--monitoring-port', '0', '--no-ca'], { env: { ...process.env, PILOT_SIDECAR_USE_REMOTE_ADDRESS: 'on' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /environment variable PILOT_SIDECAR_USE_REMOTE_ADDRESS="on" is not a boolean: use true or false/);
});
