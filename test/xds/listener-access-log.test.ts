// Listener.access_log as istiod's setListenerAccessLog sets it: with access logging on (mesh
// accessLogFile, a Telemetry accessLogging provider, defaultProviders) every sidecar listener
// (inbound, outbound) and gateway listener gets the same file log as the chains, under a
// response_flag_filter for NR (AND the Telemetry filter expression when there is one); none with
// logging off, with disableEnvoyListenerLog, or where a Telemetry disables logging.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import type { MeshConfig } from '../../src/model/mesh-config.ts';
import type { Proxy } from '../../src/model/proxy.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT } from '../../src/xds/telemetry/telemetry-config.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, gatewayProxy, parseYaml, podSidecar } from './fixtures.ts';

const SERVICES = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ port: 9080, name: http }, { port: 3306, name: tcp-db }] }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ['*'] }]
`;

const NR = { response_flag_filter: { flags: ['NR'] } };

const pod = () => podSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }], '10.1.0.5');

function listeners(proxy: Proxy, yaml = '', mesh: Partial<MeshConfig> = {}): EnvoyJson[] {
  const push = buildPush(parseYaml(SERVICES + yaml), [proxy], { mesh });
  const out = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  for (const l of out) assertEnvoyResource(LISTENER_TYPE, l);
  return out;
}

function fileLog(path: string, format: EnvoyJson, filter: EnvoyJson): EnvoyJson {
  return { name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path, log_format: format }, filter };
}

test('mesh accessLogFile: every sidecar and gateway listener logs NR connections to it, in the mesh format; none when off or with disableEnvoyListenerLog', () => {
  const text = fileLog('/dev/stdout', { text_format_source: { inline_string: ISTIO_TEXT_FORMAT } }, NR);
  for (const proxy of [pod(), explicitSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }]), gatewayProxy()]) {
    const ls = listeners(proxy, '', { accessLogFile: '/dev/stdout' });
    assert.ok(ls.length >= 1);
    for (const l of ls) assert.deepEqual(l.access_log, [text], `${String(l.name)}`);
  }
  const names = listeners(pod(), '', { accessLogFile: '/dev/stdout' }).map((l) => l.name);
  assert.ok(names.includes('virtualInbound') && names.includes('virtualOutbound'), names.join(', '));

  const json = listeners(pod(), '', { accessLogFile: '/var/log/a.json', accessLogEncoding: 'JSON' });
  for (const l of json) assert.deepEqual(l.access_log, [fileLog('/var/log/a.json', { json_format: ISTIO_JSON_FORMAT }, NR)]);

  // Logging off, or disableEnvoyListenerLog: none.
  for (const l of [...listeners(pod()), ...listeners(gatewayProxy())]) assert.equal(l.access_log, undefined, String(l.name));
  for (const l of listeners(pod(), '', { accessLogFile: '/dev/stdout', disableEnvoyListenerLog: true })) assert.equal(l.access_log, undefined, String(l.name));
});

test('Telemetry accessLogging: the provider under NR AND the filter expression, by listener direction; disabled: none', () => {
  const mesh = { extensionProviders: [{ name: 'json-log', envoyFileAccessLog: { path: '/tmp/l.json', logFormat: { labels: { flags: '%RESPONSE_FLAGS%' } } } }] };
  const telemetry = `
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: logs, namespace: default }
spec:
  accessLogging:
  - providers: [{ name: json-log }]
    match: { mode: SERVER }
    filter: { expression: "response.code >= 400" }
`;
  const ls = listeners(pod(), telemetry, mesh);
  const cel = { extension_filter: { name: 'envoy.access_loggers.extension_filters.cel', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter', expression: 'response.code >= 400' } } };
  const inbound = ls.filter((l) => l.traffic_direction === 'INBOUND');
  assert.ok(inbound.length);
  for (const l of inbound) assert.deepEqual(l.access_log, [fileLog('/tmp/l.json', { json_format: { flags: '%RESPONSE_FLAGS%' } }, { and_filter: { filters: [NR, cel] } })], String(l.name));
  // mode SERVER only: outbound listeners log nothing.
  for (const l of ls.filter((x) => x.traffic_direction === 'OUTBOUND')) assert.equal(l.access_log, undefined, String(l.name));

  const defaults = listeners(pod(), '', { ...mesh, defaultProviders: { accessLogging: ['json-log'] } });
  for (const l of defaults) assert.deepEqual(l.access_log, [fileLog('/tmp/l.json', { json_format: { flags: '%RESPONSE_FLAGS%' } }, NR)], String(l.name));

  const off = `
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: off, namespace: default }
spec: { accessLogging: [{ disabled: true }] }
`;
  for (const l of listeners(pod(), off, { accessLogFile: '/dev/stdout' })) assert.equal(l.access_log, undefined, String(l.name));
});
