// PERMISSIVE tells mesh mTLS from a client's own TLS by ALPN alone, so every ALPN list a mesh
// client offers (a client sidecar's or gateway's Istio mTLS clusters, and the istio.alpn override
// of their HTTP connection managers) must select the server sidecar's mTLS chain on every kind of
// port, while a browser's ALPN or none must not. Selection follows Envoy: the first offered
// protocol that a chain lists picks the chain, else a chain without application_protocols.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, LISTENER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, gatewayProxy, parseYaml, podSidecar } from './fixtures.ts';

const PORTS = [
  { port: 8080, name: 'http' },
  { port: 9090, name: 'grpc' },
  { port: 5432, name: 'tcp-db' },
  { port: 8443, name: 'https' },
  { port: 7000, name: 'custom' },
];
const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: server, namespace: default }
spec: { selector: { app: server }, ports: ${JSON.stringify(PORTS)} }
`;

type Chain = { match: EnvoyJson; terminatesTls: boolean };

/** Envoy's choice among one port's TLS chains for an offered ALPN list. */
function select(chains: Chain[], offered: readonly string[]): Chain | 'none' {
  const tlsChains = chains.filter((c) => c.match.transport_protocol === 'tls');
  for (const p of offered) {
    const hit = tlsChains.find((c) => (c.match.application_protocols as string[] | undefined)?.includes(p));
    if (hit) return hit;
  }
  return tlsChains.find((c) => !c.match.application_protocols) ?? 'none';
}

/** Every ALPN list a proxy offers to the server's port over Istio mTLS (once each). */
function offeredLists(clusters: EnvoyJson[], listeners: EnvoyJson[], port: number): string[][] {
  const cluster = clusters.find((c) => c.name === `outbound|${port}||server.default.svc.cluster.local`);
  assert.ok(cluster, `cluster for port ${port}`);
  const istio = (cluster.transport_socket_matches as EnvoyJson[]).find((m) => (m.match as EnvoyJson).tlsMode === 'istio')!;
  const lists = [((istio.transport_socket as EnvoyJson).typed_config as { common_tls_context: { alpn_protocols: string[] } }).common_tls_context.alpn_protocols];
  const overrides = JSON.stringify(listeners).includes('"istio.alpn"') ? listeners : [];
  JSON.stringify(overrides, (k, v) => {
    if (k === 'alpn_override' && Array.isArray(v) && typeof v[0] === 'string') lists.push(v as string[]);
    return v;
  });
  return [...new Set(lists.map((l) => l.join(',')))].map((l) => l.split(','));
}

test('PERMISSIVE: every ALPN a mesh client offers selects the mTLS chain; other TLS is passed through on TCP ports, closed on HTTP ports', () => {
  const server = podSidecar('server-0', 'default', { app: 'server' }, 'server', PORTS, '198.18.0.60');
  const client = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.61');
  const gateway = gatewayProxy();
  const push = buildPush(parseYaml(CONFIG), [server, client, gateway]);
  const vin = GENERATORS[LISTENER_TYPE].generate(push, server, undefined).find((l) => l.name === 'virtualInbound')!;
  const chainsOf = (port: number): Chain[] =>
    (vin.filter_chains as EnvoyJson[]).filter((c) => (c.filter_chain_match as EnvoyJson | undefined)?.destination_port === port).map((c) => ({ match: c.filter_chain_match as EnvoyJson, terminatesTls: c.transport_socket !== undefined }));

  for (const proxy of [client, gateway]) {
    const clusters = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined);
    const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
    const lists = (port: number) => offeredLists(clusters, listeners, port);
    if (proxy === client) assert.deepEqual(lists(8080).map((l) => l.join(',')), ['istio-peer-exchange,istio', 'istio-http/1.0,istio,http/1.0', 'istio-http/1.1,istio,http/1.1', 'istio-h2,istio,h2']);
    for (const { port } of PORTS) {
      for (const offered of lists(port)) {
        const chosen = select(chainsOf(port), offered);
        assert.ok(chosen !== 'none' && chosen.terminatesTls, `${proxy.id} port ${port} offering ${offered.join(',')}: ${JSON.stringify(chosen)}`);
      }
    }
  }
  for (const offered of [['h2', 'http/1.1'], []]) {
    for (const { port, name } of PORTS) {
      const chosen = select(chainsOf(port), offered);
      if (name === 'http' || name === 'grpc') assert.equal(chosen, 'none', `port ${port}`);
      else assert.ok(chosen !== 'none' && !chosen.terminatesTls, `port ${port} offering ${offered.join(',')}: passthrough`);
    }
  }
});
