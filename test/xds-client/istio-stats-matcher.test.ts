// Istio's stats matcher in the bootstrap `rig proxy` builds from its flags, as pilot-agent builds
// it: Istio's default inclusion list, PROXY_CONFIG's proxyStatsMatcher, the pod's
// sidecar.istio.io/statsInclusion* annotations (node metadata ANNOTATIONS) in its place, {pod_ip};
// then a real sidecar on a control plane: which Envoy stats its /stats and /stats/prometheus show,
// with Istio's metrics always there.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Command } from 'commander';
import { checkMessage, type EnvoyJson } from '../../src/envoy/index.ts';
import { addXdsOptions, bootstrapFromOptions, type XdsCliOptions } from '../../src/proxy/bootstrap/flags.ts';
import { freePort } from '../../src/local/ports.ts';
import { workloadReplicas } from '../../src/local/mesh-plan.ts';
import { proxyStatsEnv } from '../../src/local/proxy-stats-env.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import type { Resource } from '../../src/api/index.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const FLAGS = ['--xds-address', '127.0.0.1:15010', '--namespace', 'foo', '--workload-name', 'httpbin', '--instance-ip', '10.0.0.7'];

function patterns(env: NodeJS.ProcessEnv = {}, flags: string[] = FLAGS): string[] {
  const cmd = addXdsOptions(new Command('proxy').exitOverride());
  cmd.parse(flags, { from: 'user' });
  const b = bootstrapFromOptions(cmd.opts<XdsCliOptions>(), env);
  assert.deepEqual(checkMessage('envoy.config.bootstrap.v3.Bootstrap', b), []);
  const list = ((b.stats_config as EnvoyJson).stats_matcher as { inclusion_list: { patterns: Record<string, unknown>[] } }).inclusion_list.patterns;
  return list.map((p) => Object.entries(p).map(([k, v]) => `${k}:${typeof v === 'string' ? v : (v as { regex: string }).regex}`).join());
}

const DEFAULT_PREFIXES = ['prefix:cluster_manager', 'prefix:listener_manager', 'prefix:server', 'prefix:cluster.xds-grpc', 'prefix:wasm'];
const DEFAULT_SUFFIXES = ['suffix:rbac.allowed', 'suffix:rbac.denied', 'suffix:shadow_allowed', 'suffix:shadow_denied'];
const DEFAULT_REGEX = String.raw`safe_regex:vhost\..*\.route\..*`;
const TAIL = ['prefix:component', 'prefix:istio'];

test("Istio's default inclusion list, in the order of Istio's bootstrap template", () => {
  assert.deepEqual(patterns(), ['prefix:reporter=', ...DEFAULT_PREFIXES, ...DEFAULT_SUFFIXES, DEFAULT_REGEX, ...TAIL]);
});

test('PROXY_CONFIG proxyStatsMatcher adds to each list; the annotations replace its lists; {pod_ip} is each instance IP', () => {
  const proxyConfig = JSON.stringify({ proxyStatsMatcher: { inclusionPrefixes: ['cluster.outbound', 'http.{pod_ip}_'], inclusionSuffixes: ['upstream_rq_total'], inclusionRegexps: ['.*outlier_detection.*'] } });
  assert.deepEqual(patterns({ PROXY_CONFIG: proxyConfig }), [
    'prefix:reporter=', 'prefix:cluster.outbound', 'prefix:http.10.0.0.7_', ...DEFAULT_PREFIXES,
    'suffix:upstream_rq_total', ...DEFAULT_SUFFIXES,
    'safe_regex:.*outlier_detection.*', DEFAULT_REGEX, ...TAIL,
  ]);
  const annotations = JSON.stringify({ 'sidecar.istio.io/statsInclusionPrefixes': 'listener,cluster.inbound', 'sidecar.istio.io/statsInclusionRegexps': 'http\\..*' });
  assert.deepEqual(patterns({ PROXY_CONFIG: proxyConfig, ISTIO_METAJSON_ANNOTATIONS: annotations }), [
    'prefix:reporter=', 'prefix:listener', 'prefix:cluster.inbound', ...DEFAULT_PREFIXES,
    'suffix:upstream_rq_total', ...DEFAULT_SUFFIXES, // no suffix annotation: proxyStatsMatcher's stay
    String.raw`safe_regex:http\..*`, DEFAULT_REGEX, ...TAIL,
  ]);
  assert.ok(patterns({ ISTIO_META_EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' }).includes('suffix:downstream_cx_active'), 'the agent waits for active connections: it keeps them');
});

test('a bad proxyStatsMatcher or ANNOTATIONS is an error naming it', () => {
  const cmd = addXdsOptions(new Command('proxy').exitOverride());
  cmd.parse(FLAGS, { from: 'user' });
  const build = (env: NodeJS.ProcessEnv) => () => bootstrapFromOptions(cmd.opts<XdsCliOptions>(), env);
  assert.throws(build({ PROXY_CONFIG: '{"proxyStatsMatcher": {"inclusionPrefix": ["a"]}}' }), /PROXY_CONFIG\.proxyStatsMatcher\.inclusionPrefix: unknown field/);
  assert.throws(build({ PROXY_CONFIG: '{"proxyStatsMatcher": {"inclusionPrefixes": "cluster"}}' }), /PROXY_CONFIG\.proxyStatsMatcher\.inclusionPrefixes: must be a list of strings/);
  assert.throws(build({ ISTIO_METAJSON_ANNOTATIONS: '{"sidecar.istio.io/statsInclusionPrefixes": ["a"]}' }), /ANNOTATIONS must be a map of strings/);
});

test('rig up: MeshConfig defaultConfig.proxyStatsMatcher under a Workload\'s proxy.istio.io/config, its stats annotations as ANNOTATIONS', () => {
  const mesh = parseMeshConfig({ defaultConfig: { proxyStatsMatcher: { inclusionPrefixes: ['cluster.outbound'], inclusionSuffixes: ['upstream_cx_total'] } } });
  assert.throws(() => parseMeshConfig({ defaultConfig: { proxyStatsMatcher: { inclusionPrefixes: 'x' } } }), /defaultConfig\.proxyStatsMatcher\.inclusionPrefixes: expected stringArray/);
  const workload = (annotations: Record<string, string>) => ({ kind: 'Workload', metadata: { name: 'w', namespace: 'default', annotations }, spec: { command: ['node'] } }) as unknown as Resource;
  const [plan] = workloadReplicas([workload({ 'proxy.istio.io/config': 'proxyStatsMatcher: { inclusionPrefixes: [listener] }', 'sidecar.istio.io/statsInclusionRegexps': 'http\\..*' })]);
  assert.equal(plan.problem, undefined);
  assert.deepEqual(proxyStatsEnv(mesh.defaultConfig.proxyStatsMatcher, plan.proxyStats), {
    PROXY_CONFIG: JSON.stringify({ proxyStatsMatcher: { inclusionPrefixes: ['listener'], inclusionSuffixes: ['upstream_cx_total'] } }),
    ISTIO_METAJSON_ANNOTATIONS: JSON.stringify({ 'sidecar.istio.io/statsInclusionRegexps': 'http\\..*' }),
  });
  assert.deepEqual(proxyStatsEnv(undefined), {}, 'nothing asked: Istio\'s defaults');
  assert.match(workloadReplicas([workload({ 'proxy.istio.io/config': 'proxyStatsMatcher: { inclusionPrefix: [a] }' })])[0].problem ?? '', /proxyStatsMatcher\.inclusionPrefix is not a field/);
});

const CONFIG = `
apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec:
  selector: { app: httpbin }
  ports: [{ name: http, port: 8000 }]
`;

async function sidecarStats(t: TestContext, env: NodeJS.ProcessEnv): Promise<{ stats: string; prom: string }> {
  const app = await startUpstream('httpbin');
  t.after(() => app.close());
  const cp = await startMeshControlPlane(t, { dirPrefix: 'rig-istio-stats-', config: CONFIG, controlPlane: { debounceMs: 10 } });
  const inbound = await freePort();
  const proxy = await startSidecar(t, cp, { namespace: 'foo', name: 'httpbin', env, args: ['--workload-port', '8000/http/HTTP', '--inbound-port', `8000=${inbound}`, '--app-port', `8000=${app.port}`, '--outbound-port', String(await freePort())] });
  const ports = await proxy.started();
  const get = () => request(inbound, { path: '/ip', headers: { host: 'httpbin.foo:8000' } });
  await waitFor(() => `the inbound listener\n${proxy.log()}`, async () => ((await get().catch(() => undefined))?.status === 200 ? true : undefined));
  for (let i = 0; i < 2; i++) assert.equal((await get()).status, 200);
  // Istio's metrics are recorded when the stream ends, after the response went out.
  const prom = await waitFor(() => 'istio_requests_total', async () => {
    const text = (await request(ports.stats, { path: '/stats/prometheus' })).body;
    return /^istio_requests_total\{.*\} 3$/m.test(text) ? text : undefined;
  });
  return { stats: (await request(ports.admin, { path: '/stats' })).body, prom };
}

test("a sidecar with Istio's defaults: Istio's metrics, no cluster or HCM stats", async (t) => {
  const { stats, prom } = await sidecarStats(t, {});
  assert.doesNotMatch(stats, /^cluster\.inbound\|8000\|\|\.upstream_rq/m);
  assert.doesNotMatch(stats, /^http\..*downstream_rq/m);
  assert.doesNotMatch(prom, /^envoy_cluster_[a-z_]+\{[^}]*cluster_name="inbound/m);
  assert.match(prom, /^envoy_cluster_upstream_cx_total\{cluster_name="xds-grpc"\} \d/m, 'the xds-grpc cluster\'s stats stay (cluster.xds-grpc)');
  assert.match(prom, /^istio_requests_total\{.*reporter="destination".*\} 3$/m, "Istio's standard metrics stay");
});

test('a sidecar whose PROXY_CONFIG asks for its inbound cluster stats shows them', async (t) => {
  const { stats, prom } = await sidecarStats(t, { PROXY_CONFIG: JSON.stringify({ proxyStatsMatcher: { inclusionPrefixes: ['cluster.inbound'] } }) });
  assert.match(stats, /^cluster\.inbound\|8000\|\|\.upstream_rq_200: 3$/m);
  assert.doesNotMatch(stats, /^http\..*downstream_rq/m, 'only what it asked for');
  assert.match(prom, /^envoy_cluster_upstream_rq\{response_code="200",cluster_name="inbound\|8000\|\|"\} 3$/m);
  assert.match(prom, /^istio_requests_total\{.*\} 3$/m);
});
