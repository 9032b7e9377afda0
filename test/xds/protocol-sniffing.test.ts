// Protocol sniffing in REDIRECT mode (generated config): the outbound listener of a port without a
// declared protocol carries the http_inspector, an HTTP chain (application_protocols) beside the TCP
// chain, MeshConfig protocolDetectionTimeout; virtualInbound splits the port the same way in
// plaintext and by Istio's istio-http ALPN over mTLS. Named ports are not sniffed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, parseYaml, podSidecar } from './fixtures.ts';

const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: legacy, namespace: default }
spec: { selector: { app: legacy }, ports: [{ name: custom, port: 7000 }, { name: tcp-db, port: 7001 }] }
`;

const names = (l: EnvoyJson) => ((l.listener_filters as EnvoyJson[] | undefined) ?? []).map((f) => f.name);
const chainFilters = (c: EnvoyJson) => (c.filters as EnvoyJson[]).map((f) => f.name);

test('outbound: a service port with an unknown name gets an http_inspector listener with HTTP and TCP chains; a tcp- port does not', () => {
  const client = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.50');
  const push = buildPush(parseYaml(CONFIG), [client], { mesh: { protocolDetectionTimeout: '5s' } });
  const vip = push.serviceByHost.get('legacy.default.svc.cluster.local')!.address;
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, client, undefined);
  const sniffed = listeners.find((l) => l.name === `${vip}_7000`)!;
  assertEnvoyResource(LISTENER_TYPE, sniffed);
  assert.ok(names(sniffed).includes('envoy.filters.listener.http_inspector'));
  assert.equal(sniffed.listener_filters_timeout, '5s');
  assert.equal(sniffed.continue_on_listener_filters_timeout, true);
  const [http, tcp] = sniffed.filter_chains as EnvoyJson[];
  assert.deepEqual(http.filter_chain_match, { application_protocols: ['http/1.1', 'h2c'] });
  assert.deepEqual((((http.filters as EnvoyJson[]).find((f) => f.name === 'envoy.filters.network.http_connection_manager')!.typed_config as EnvoyJson).rds as EnvoyJson).route_config_name, '7000');
  assert.equal(tcp.filter_chain_match, undefined);
  assert.ok(chainFilters(tcp).includes('envoy.filters.network.tcp_proxy'));
  const named = listeners.find((l) => l.name === `${vip}_7001`)!;
  assert.ok(!names(named).includes('envoy.filters.listener.http_inspector'));
});

test('inbound: virtualInbound splits a workload port with an unknown name into HTTP and TCP chains, in plaintext and over mTLS', () => {
  const server = podSidecar('legacy-0', 'default', { app: 'legacy' }, 'legacy', [{ port: 7000, name: 'custom' }, { port: 7001, name: 'tcp-db' }], '198.18.0.51');
  const push = buildPush(parseYaml(CONFIG), [server]);
  const vin = GENERATORS[LISTENER_TYPE].generate(push, server, undefined).find((l) => l.name === 'virtualInbound')!;
  assertEnvoyResource(LISTENER_TYPE, vin);
  assert.ok(names(vin).includes('envoy.filters.listener.http_inspector'));
  const forPort = (vin.filter_chains as EnvoyJson[]).filter((c) => (c.filter_chain_match as EnvoyJson | undefined)?.destination_port === 7000);
  assert.deepEqual(
    forPort.map((c) => [c.filter_chain_match, chainFilters(c).at(-1)]),
    [
      [{ destination_port: 7000, transport_protocol: 'tls', application_protocols: ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'] }, 'envoy.filters.network.http_connection_manager'],
      [{ destination_port: 7000, transport_protocol: 'tls', application_protocols: ['istio-peer-exchange', 'istio'] }, 'envoy.filters.network.tcp_proxy'],
      [{ destination_port: 7000, transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'h2c'] }, 'envoy.filters.network.http_connection_manager'],
      [{ destination_port: 7000, transport_protocol: 'raw_buffer' }, 'envoy.filters.network.tcp_proxy'],
      // PERMISSIVE: TLS without Istio's ALPN is a client's own TLS, relayed to the application.
      [{ destination_port: 7000, transport_protocol: 'tls' }, 'envoy.filters.network.tcp_proxy'],
    ],
  );
  const tcpPort = (vin.filter_chains as EnvoyJson[]).filter((c) => (c.filter_chain_match as EnvoyJson | undefined)?.destination_port === 7001);
  assert.ok(tcpPort.every((c) => chainFilters(c).at(-1) === 'envoy.filters.network.tcp_proxy'));
});
