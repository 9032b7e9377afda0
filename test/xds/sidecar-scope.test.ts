// The Sidecar resource (generated config): workloadSelector by labels; egress listeners scope hosts
// per port, and with a bind address / captureMode NONE get a listener of their own; ingress
// listeners replace the workload's ports (protocol, defaultEndpoint, captureMode NONE + bind, TLS
// termination, connection pool).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, parseYaml, podSidecar } from './fixtures.ts';

const SERVICES = `apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec: { selector: { app: ratings }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: default }
spec: { selector: { app: db }, ports: [{ name: tcp, port: 5432 }] }
---
apiVersion: v1
kind: Service
metadata: { name: cache, namespace: other }
spec: { selector: { app: cache }, ports: [{ name: tcp, port: 6379 }] }
`;

function generate(yaml: string, proxy = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.60')) {
  const push = buildPush(parseYaml(`${SERVICES}---\n${yaml}`), [proxy]);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
  for (const l of listeners) assertEnvoyResource(LISTENER_TYPE, l);
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined);
  const route = (name: string) => GENERATORS[ROUTE_TYPE].generate(push, proxy, [name])[0];
  return { push, listeners, clusters, route };
}

const vhostNames = (rc: EnvoyJson) => (rc.virtual_hosts as EnvoyJson[]).map((v) => v.name);

test('a Sidecar selects its workloads by workloadSelector.labels; others get the namespace default', () => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: client-only, namespace: default }
spec:
  workloadSelector: { labels: { app: client } }
  egress: [{ hosts: [./db.default.svc.cluster.local] }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  egress: [{ hosts: ["./*"] }]
`;
  const client = generate(yaml);
  assert.equal(client.push.sidecarFor(podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.60'))?.metadata.name, 'client-only');
  assert.deepEqual(client.clusters.filter((c) => String(c.name).startsWith('outbound|')).map((c) => c.name), ['outbound|5432||db.default.svc.cluster.local']);
  const other = generate(yaml, podSidecar('web-0', 'default', { app: 'web' }, 'web', [], '198.18.0.61'));
  assert.equal(other.clusters.filter((c) => String(c.name).startsWith('outbound|')).length, 3);
});

test('egress listeners scope hosts per port; bind/captureMode NONE get their own listener', () => {
  const { listeners, clusters, route } = generate(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  egress:
  - port: { number: 9080, protocol: HTTP, name: http }
    bind: 127.0.0.1
    captureMode: NONE
    hosts: [./reviews.default.svc.cluster.local]
  - port: { number: 6379, protocol: TCP, name: redis }
    captureMode: NONE
    hosts: [other/cache.other.svc.cluster.local]
  - hosts: ["./*", "other/*"]
`);
  // Port 9080 reaches only reviews, on a listener bound for real on 127.0.0.1:9080 (no captured 0.0.0.0_9080).
  const l9080 = listeners.find((l) => l.name === '127.0.0.1_9080')!;
  assert.equal(l9080.bind_to_port, true);
  assert.equal(listeners.find((l) => l.name === '0.0.0.0_9080'), undefined);
  assert.deepEqual(vhostNames(route('9080')), ['reviews.default.svc.cluster.local:9080', 'allow_any']);
  // Clusters still cover every imported host (ratings through the catch-all listener's hosts).
  assert.ok(clusters.some((c) => c.name === 'outbound|9080||ratings.default.svc.cluster.local'));
  // A TCP egress listener relays to its service.
  const redis = listeners.find((l) => l.name === '127.0.0.1_6379')!;
  assert.equal(redis.bind_to_port, true);
  const tcp = (redis.filter_chains as EnvoyJson[]).at(-1)!;
  assert.equal(((tcp.filters as EnvoyJson[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy')!.typed_config as EnvoyJson).cluster, 'outbound|6379||cache.other.svc.cluster.local');
  // Other ports follow the catch-all as before (captured, per service address).
  const db = listeners.find((l) => String(l.name).endsWith('_5432'))!;
  assert.equal(db.bind_to_port, false);
});

test("a captured egress listener's port protocol (none: sniffing) is its listeners' protocol, as istiod builds them (routes keep the services' own)", () => {
  const { listeners, route } = generate(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  egress:
  - port: { number: 9080, protocol: TCP, name: tcp }
    hosts: [./reviews.default.svc.cluster.local]
  - port: { number: 5432, protocol: HTTP, name: http }
    hosts: [./db.default.svc.cluster.local]
  - hosts: ["./*", "other/*"]
`);
  // No protocol declared: protocol sniffing, whatever the services declare (ratings:9080 is HTTP).
  const sniffed = generate(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: default }
spec:
  egress:
  - port: { number: 9080, name: any }
    hosts: [./ratings.default.svc.cluster.local]
`);
  assert.equal(sniffed.listeners.find((l) => l.name === '0.0.0.0_9080'), undefined);
  const ratings = sniffed.listeners.filter((l) => String(l.name).endsWith('_9080'));
  assert.equal(ratings.length, 1);
  assert.ok((ratings[0].listener_filters as EnvoyJson[]).some((f) => f.name === 'envoy.filters.listener.http_inspector'));
  const filterNames = (l: EnvoyJson) => (l.filter_chains as EnvoyJson[]).flatMap((c) => (c.filters as EnvoyJson[]).map((f) => f.name));
  // reviews:9080 (an HTTP service port) is relayed as TCP on the service's address; no HTTP listener on 9080.
  assert.equal(listeners.find((l) => l.name === '0.0.0.0_9080'), undefined);
  const reviews = listeners.filter((l) => String(l.name).endsWith('_9080'));
  assert.equal(reviews.length, 1);
  assert.deepEqual(filterNames(reviews[0]).filter((n) => n !== 'istio.stats'), ['envoy.filters.network.tcp_proxy']);
  assert.equal(reviews[0].bind_to_port, false);
  // db:5432 (a TCP service port) gets the shared HTTP listener of port 5432, whose routes have no virtual host for a TCP service port.
  const http = listeners.find((l) => l.name === '0.0.0.0_5432')!;
  assert.deepEqual(filterNames(http), ['envoy.filters.network.http_connection_manager']);
  assert.deepEqual(vhostNames(route('5432')), ['allow_any']);
});

test('ingress listeners replace the workload ports: protocol, defaultEndpoint, captureMode NONE, TLS, connection pool', () => {
  const server = podSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9080, name: 'http' }, { port: 9999, name: 'tcp-admin' }], '198.18.0.62');
  const { listeners, clusters } = generate(
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: reviews, namespace: default }
spec:
  workloadSelector: { labels: { app: reviews } }
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http }
    bind: 198.18.0.62
    defaultEndpoint: 127.0.0.1:8080
    connectionPool: { tcp: { maxConnections: 7 } }
  - port: { number: 8081, protocol: HTTP, name: http-local }
    captureMode: NONE
    bind: 127.0.0.1
    defaultEndpoint: 127.0.0.1:8082
  - port: { number: 7070, protocol: TCP, name: tcp-raw }
    captureMode: NONE
    bind: 0.0.0.0
    defaultEndpoint: 0.0.0.0:7071
  - port: { number: 9443, protocol: HTTPS, name: https }
    defaultEndpoint: 127.0.0.1:8443
    tls: { mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem }
  egress: [{ hosts: ["./*"] }]
`,
    server,
  );
  const inbound = (p: number) => clusters.find((c) => c.name === `inbound|${p}||`)!;
  const addr = (c: EnvoyJson) => (((((c.load_assignment as EnvoyJson).endpoints as EnvoyJson[])[0].lb_endpoints as EnvoyJson[])[0].endpoint as EnvoyJson).address as EnvoyJson).socket_address;
  assert.deepEqual(addr(inbound(9080)), { address: '127.0.0.1', port_value: 8080 });
  assert.equal((((inbound(9080).circuit_breakers as EnvoyJson).thresholds as EnvoyJson[])[0]).max_connections, 7);
  assert.deepEqual(addr(inbound(7070)), { address: '198.18.0.62', port_value: 7071 });
  assert.equal(inbound(7070).upstream_bind_config, undefined);
  // The workload's own 9999 is not served: the ingress list replaces it.
  assert.equal(inbound(9999), undefined);
  const vin = listeners.find((l) => l.name === 'virtualInbound')!;
  const ports = new Set((vin.filter_chains as EnvoyJson[]).map((c) => (c.filter_chain_match as EnvoyJson | undefined)?.destination_port));
  assert.ok(ports.has(9080) && ports.has(9443) && !ports.has(7070) && !ports.has(9999));
  const own = listeners.find((l) => l.name === '0.0.0.0_7070')!;
  assert.equal(own.traffic_direction, 'INBOUND');
  assert.equal(own.bind_to_port, undefined);
  // As istiod, a bind names the HTTP stat prefix (inbound_<bind>_<port>), also on a captured listener, where it changes nothing else.
  const statPrefixes = (l: EnvoyJson) => (l.filter_chains as EnvoyJson[]).flatMap((c) => (c.filters as EnvoyJson[]).filter((f) => f.name === 'envoy.filters.network.http_connection_manager').map((f) => (f.typed_config as EnvoyJson).stat_prefix));
  const vin9080 = { filter_chains: (vin.filter_chains as EnvoyJson[]).filter((c) => (c.filter_chain_match as EnvoyJson | undefined)?.destination_port === 9080) };
  assert.deepEqual([...new Set(statPrefixes(vin9080))], ['inbound_198.18.0.62_9080']);
  assert.deepEqual([...new Set(statPrefixes(listeners.find((l) => l.name === '127.0.0.1_8081')!))], ['inbound_127.0.0.1_8081']);
  // TLS on 9443: the given certificate, not Istio mTLS.
  const tls = (vin.filter_chains as EnvoyJson[]).filter((c) => (c.filter_chain_match as EnvoyJson).destination_port === 9443);
  assert.equal(tls.length, 1);
  assert.match(JSON.stringify(tls[0].transport_socket), /\/etc\/certs\/cert\.pem/);
});

test('sidecar ingress TLS from a credentialName is served over SDS like a gateway\'s', () => {
  const server = podSidecar('reviews-0', 'default', { app: 'reviews' }, 'reviews', [{ port: 9443, name: 'https' }], '198.18.0.63');
  const push = buildPush(
    parseYaml(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: reviews, namespace: default }
spec:
  workloadSelector: { labels: { app: reviews } }
  ingress:
  - port: { number: 9443, protocol: HTTPS, name: https }
    defaultEndpoint: 127.0.0.1:8443
    tls: { mode: MUTUAL, credentialName: reviews-cert }
`),
    [server],
    { credentials: (n) => (n === 'reviews-cert' ? { certificateChain: Buffer.from('CERT'), privateKey: Buffer.from('KEY'), caCertificate: Buffer.from('CA') } : undefined) },
  );
  const vin = GENERATORS[LISTENER_TYPE].generate(push, server, undefined).find((l) => l.name === 'virtualInbound')!;
  const chain = (vin.filter_chains as EnvoyJson[]).find((c) => (c.filter_chain_match as EnvoyJson).destination_port === 9443)!;
  const text = JSON.stringify(chain.transport_socket);
  assert.match(text, /kubernetes:\/\/reviews-cert"/);
  assert.match(text, /"require_client_certificate":true/);
  const secrets = GENERATORS[SECRET_TYPE].generate(push, server, ['kubernetes://reviews-cert', 'kubernetes://reviews-cert-cacert']);
  assert.equal(secrets.length, 2);
});
