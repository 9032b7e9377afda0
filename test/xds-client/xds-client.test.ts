// The proxy's ADS client against a real gRPC ADS server on loopback.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { CLUSTER_TYPE, ENDPOINT_TYPE, HCM_TYPE, LISTENER_TYPE, ROUTE_TYPE, ROUTER_TYPE, SECRET_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { shareSecrets, XdsClient, type XdsSink } from '../../src/proxy/xds-client/index.ts';
import { AdsTestServer, type RecordedRequest } from './ads-test-server.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function bootstrap(port: number): EnvoyJson {
  return {
    node: { id: 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local', cluster: 'reviews.default', metadata: { NAMESPACE: 'default', LABELS: { app: 'reviews' } } },
    dynamic_resources: {
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [
        {
          name: 'xds-grpc',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: { cluster_name: 'xds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
        },
      ],
    },
  };
}

/** A sink that records every set it is given and refuses resources whose name starts with "bad". */
class RecordingSink implements XdsSink {
  readonly applied: Array<{ typeUrl: string; names: string[] }> = [];
  readonly current = new Map<string, ReadonlyMap<string, EnvoyJson>>();
  apply(typeUrl: string, resources: ReadonlyMap<string, EnvoyJson>): string[] {
    const bad = [...resources.keys()].filter((n) => n.startsWith('bad'));
    if (bad.length) return bad.map((n) => `${n}: refused by the test sink`);
    this.applied.push({ typeUrl, names: [...resources.keys()].sort() });
    this.current.set(typeUrl, resources);
    return [];
  }
  names(typeUrl: string): string[] {
    return [...(this.current.get(typeUrl)?.keys() ?? [])].sort();
  }
}

const edsCluster = (name: string, serviceName?: string): EnvoyJson => ({
  name,
  type: 'EDS',
  connect_timeout: '1s',
  eds_cluster_config: { eds_config: { ads: {} }, ...(serviceName ? { service_name: serviceName } : {}) },
});
const staticCluster = (name: string): EnvoyJson => ({ name, type: 'STATIC', connect_timeout: '1s' });
const assignment = (name: string, port: number): EnvoyJson => ({
  cluster_name: name,
  endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
});
const httpListener = (name: string, port: number, route: string): EnvoyJson => ({
  name,
  address: { socket_address: { address: '0.0.0.0', port_value: port } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': HCM_TYPE,
            stat_prefix: name,
            rds: { route_config_name: route, config_source: { ads: {} } },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
          },
        },
      ],
    },
  ],
});
const routeConfig = (name: string): EnvoyJson => ({ name, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||reviews' } }] }] });

const isType = (typeUrl: string, pred: (r: RecordedRequest) => boolean = () => true) => (r: RecordedRequest) => r.type_url === typeUrl && pred(r);
const acks = (nonce: string) => (r: RecordedRequest) => r.response_nonce === nonce;

async function setup(t: TestContext, opts: { initialFetchTimeoutMs?: number } = {}) {
  const server = new AdsTestServer();
  const port = await server.start();
  const sink = new RecordingSink();
  const client = new XdsClient({ bootstrap: bootstrap(port), sink, backoff: { initialMs: 50, maxMs: 200 }, initialFetchTimeoutMs: opts.initialFetchTimeoutMs });
  t.after(async () => {
    client.stop();
    await server.stop();
  });
  client.start();
  return { server, sink, client, port };
}

/** Brings the client to a fully configured state: clusters, endpoints, listeners, routes at v1. */
async function configure(server: AdsTestServer) {
  const cds = await server.waitFor(isType(CLUSTER_TYPE));
  const n1 = server.push(CLUSTER_TYPE, 'v1', [edsCluster('outbound|9080||reviews', 'outbound|9080||reviews.default.svc.cluster.local'), staticCluster('static-one')]);
  await server.waitFor(isType(CLUSTER_TYPE, acks(n1)));
  const eds = await server.waitFor(isType(ENDPOINT_TYPE));
  const n2 = server.push(ENDPOINT_TYPE, 'v1', [assignment('outbound|9080||reviews.default.svc.cluster.local', 9080)]);
  await server.waitFor(isType(ENDPOINT_TYPE, acks(n2)));
  const lds = await server.waitFor(isType(LISTENER_TYPE));
  const n3 = server.push(LISTENER_TYPE, 'v1', [httpListener('0.0.0.0_9080', 9080, '9080')]);
  await server.waitFor(isType(LISTENER_TYPE, acks(n3)));
  const rds = await server.waitFor(isType(ROUTE_TYPE));
  const n4 = server.push(ROUTE_TYPE, 'v1', [routeConfig('9080')]);
  await server.waitFor(isType(ROUTE_TYPE, acks(n4)));
  return { cds, eds, lds, rds };
}

test('subscribes CDS → EDS → LDS → RDS, following the clusters and listeners, and ACKs each version', async (t) => {
  const { server, sink, client } = await setup(t);
  const { cds, eds, lds, rds } = await configure(server);
  // Node only on the very first request of the stream.
  assert.equal((cds.node as EnvoyJson).id, 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local');
  assert.deepEqual(((cds.node as EnvoyJson).metadata as EnvoyJson).LABELS, { app: 'reviews' });
  assert.equal(server.requests.filter((r) => r.node).length, 1);
  assert.deepEqual(cds.resource_names ?? [], []);
  assert.deepEqual(eds.resource_names, ['outbound|9080||reviews.default.svc.cluster.local']);
  assert.deepEqual(lds.resource_names ?? [], []);
  assert.deepEqual(rds.resource_names, ['9080']);
  // Make before break: the listener subscription only once clusters and their endpoints are in.
  const order = server.requests.map((r) => r.type_url);
  assert.ok(order.indexOf(LISTENER_TYPE) > order.indexOf(ENDPOINT_TYPE));
  assert.ok(order.indexOf(ROUTE_TYPE) > order.indexOf(LISTENER_TYPE));
  assert.deepEqual(sink.applied.map((a) => a.typeUrl), [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]);
  assert.deepEqual(sink.names(CLUSTER_TYPE), ['outbound|9080||reviews', 'static-one']);
  const state = client.state();
  assert.equal(state.connected, true);
  const cdsState = state.types.find((s) => s.typeUrl === CLUSTER_TYPE)!;
  assert.equal(cdsState.versionInfo, 'v1');
  assert.equal(cdsState.subscribed, '*');
  assert.deepEqual(state.types.find((s) => s.typeUrl === ROUTE_TYPE)!.subscribed, ['9080']);
  // Every ACK carries the accepted version and the nonce it answers.
  for (const r of server.requests.filter((x) => x.response_nonce)) assert.equal(r.version_info, 'v1');
});

test('NACKs an update the proxy refuses, with the reason and the previous version, and keeps the previous config', async (t) => {
  const { server, sink, client } = await setup(t);
  await configure(server);
  const from = server.requests.length;
  const nonce = server.push(CLUSTER_TYPE, 'v2', [staticCluster('bad-cluster'), staticCluster('static-one')]);
  const nack = await server.waitFor(isType(CLUSTER_TYPE, acks(nonce)), from);
  assert.equal(nack.version_info, 'v1');
  assert.match(nack.error_detail?.message ?? '', /bad-cluster: refused by the test sink/);
  assert.equal(nack.error_detail?.code, 3);
  assert.deepEqual(sink.names(CLUSTER_TYPE), ['outbound|9080||reviews', 'static-one']);
  const cds = client.state().types.find((s) => s.typeUrl === CLUSTER_TYPE)!;
  assert.equal(cds.versionInfo, 'v1');
  assert.equal(cds.lastError?.versionInfo, 'v2');
  // An undecodable resource is NACKed too, naming it.
  const from2 = server.requests.length;
  const nonce2 = server.pushRaw(CLUSTER_TYPE, 'v3', [{ type_url: LISTENER_TYPE, value: new Uint8Array() }]);
  const nack2 = await server.waitFor(isType(CLUSTER_TYPE, acks(nonce2)), from2);
  assert.equal(nack2.version_info, 'v1');
  assert.match(nack2.error_detail?.message ?? '', /resources\[0\]: type .*Listener does not match/);
  // A good update afterwards is accepted and clears the error.
  const from3 = server.requests.length;
  const nonce3 = server.push(CLUSTER_TYPE, 'v4', [edsCluster('outbound|9080||reviews', 'outbound|9080||reviews.default.svc.cluster.local')]);
  const ack = await server.waitFor(isType(CLUSTER_TYPE, acks(nonce3)), from3);
  assert.equal(ack.version_info, 'v4');
  assert.equal(ack.error_detail, undefined);
  assert.equal(client.state().types.find((s) => s.typeUrl === CLUSTER_TYPE)!.lastError, undefined);
});

test('RDS and EDS subscriptions follow the listeners and clusters; dropped ones leave the proxy', async (t) => {
  const { server, sink } = await setup(t);
  await configure(server);
  let from = server.requests.length;
  server.push(LISTENER_TYPE, 'v2', [httpListener('0.0.0.0_8080', 8080, '8080')]);
  const rds = await server.waitFor(isType(ROUTE_TYPE), from);
  assert.deepEqual(rds.resource_names, ['8080']);
  // The route "9080" is no longer referenced: the proxy drops it.
  assert.deepEqual(sink.names(ROUTE_TYPE), []);
  const n = server.push(ROUTE_TYPE, 'v2', [routeConfig('8080')]);
  await server.waitFor(isType(ROUTE_TYPE, acks(n)), from);
  assert.deepEqual(sink.names(ROUTE_TYPE), ['8080']);
  // EDS follows the clusters (service_name, or the cluster name when there is none).
  from = server.requests.length;
  server.push(CLUSTER_TYPE, 'v2', [edsCluster('outbound|8080||ratings'), staticCluster('static-one')]);
  const eds = await server.waitFor(isType(ENDPOINT_TYPE), from);
  assert.deepEqual(eds.resource_names, ['outbound|8080||ratings']);
  assert.deepEqual(sink.names(ENDPOINT_TYPE), []);
  // A partial EDS response updates only what it carries.
  server.push(CLUSTER_TYPE, 'v3', [edsCluster('outbound|8080||ratings'), edsCluster('outbound|9090||details')]);
  const eds2 = await server.waitFor(isType(ENDPOINT_TYPE, (r) => (r.resource_names ?? []).length === 2), from);
  assert.deepEqual(eds2.resource_names, ['outbound|8080||ratings', 'outbound|9090||details']);
  const n1 = server.push(ENDPOINT_TYPE, 'e1', [assignment('outbound|8080||ratings', 1), assignment('outbound|9090||details', 2)]);
  await server.waitFor(isType(ENDPOINT_TYPE, acks(n1)), from);
  const n2 = server.push(ENDPOINT_TYPE, 'e2', [assignment('outbound|9090||details', 3)]);
  await server.waitFor(isType(ENDPOINT_TYPE, acks(n2)), from);
  assert.deepEqual(sink.names(ENDPOINT_TYPE), ['outbound|8080||ratings', 'outbound|9090||details']);
});

test('reconnects with backoff when the stream breaks or the control plane goes away, keeping the last good config', async (t) => {
  const { server, sink, client, port } = await setup(t);
  await configure(server);
  const appliedBefore = sink.applied.length;
  let from = server.requests.length;
  server.breakStream();
  await once(client, 'disconnected');
  // The new stream resumes: node again, and the versions already held.
  const cds = await server.waitFor(isType(CLUSTER_TYPE, (r) => r.stream === 2), from);
  assert.ok(cds.node, 'the first request of a new stream carries the node');
  assert.equal(cds.version_info, 'v1');
  const lds = await server.waitFor(isType(LISTENER_TYPE, (r) => r.stream === 2), from);
  assert.equal(lds.version_info, 'v1');
  const rds = await server.waitFor(isType(ROUTE_TYPE, (r) => r.stream === 2), from);
  assert.deepEqual(rds.resource_names, ['9080']);

  // Now the control plane goes away entirely: several attempts fail, the config stays.
  server.push(CLUSTER_TYPE, 'v1', [edsCluster('outbound|9080||reviews', 'outbound|9080||reviews.default.svc.cluster.local'), staticCluster('static-one')]);
  await once(client, 'ack');
  await server.stop();
  await once(client, 'disconnected');
  await new Promise((r) => setTimeout(r, 400));
  const state = client.state();
  assert.equal(state.connected, false);
  assert.ok(state.streamsOpened >= 3, `expected retries while the server is down, got ${state.streamsOpened} streams`);
  assert.deepEqual(sink.names(CLUSTER_TYPE), ['outbound|9080||reviews', 'static-one']);
  assert.deepEqual(sink.names(ROUTE_TYPE), ['9080']);
  assert.ok(sink.applied.slice(appliedBefore).every((a) => a.names.length > 0), 'nothing was emptied while away');

  const back = new AdsTestServer();
  t.after(() => back.stop());
  await back.start(port);
  from = 0;
  const again = await back.waitFor(isType(CLUSTER_TYPE), from);
  assert.equal(again.version_info, 'v1');
  const n = back.push(CLUSTER_TYPE, 'v5', [staticCluster('static-two')]);
  await back.waitFor(isType(CLUSTER_TYPE, acks(n)));
  assert.deepEqual(sink.names(CLUSTER_TYPE), ['static-two']);
  assert.equal(client.state().connected, true);
});

test('reports subscribed resources the control plane never sends, and still proceeds to listeners', async (t) => {
  const { server, client } = await setup(t, { initialFetchTimeoutMs: 200 });
  await server.waitFor(isType(CLUSTER_TYPE));
  server.push(CLUSTER_TYPE, 'v1', [edsCluster('outbound|1||ghost')]);
  await server.waitFor(isType(ENDPOINT_TYPE));
  const lds = await server.waitFor(isType(LISTENER_TYPE));
  assert.ok(lds);
  const eds = client.state().types.find((s) => s.typeUrl === ENDPOINT_TYPE)!;
  assert.deepEqual(eds.doesNotExist, ['outbound|1||ghost']);
});

test('a rejected first cluster update still lets the listeners be fetched (as Envoy initializes)', async (t) => {
  const { server, client } = await setup(t);
  await server.waitFor(isType(CLUSTER_TYPE));
  const nonce = server.push(CLUSTER_TYPE, 'v1', [staticCluster('bad-one')]);
  const nack = await server.waitFor(isType(CLUSTER_TYPE, acks(nonce)));
  assert.equal(nack.version_info ?? '', '');
  assert.ok(nack.error_detail);
  const lds = await server.waitFor(isType(LISTENER_TYPE));
  assert.deepEqual(lds.resource_names ?? [], []);
  const n = server.push(LISTENER_TYPE, 'l1', [httpListener('0.0.0.0_9080', 9080, '9080')]);
  await server.waitFor(isType(LISTENER_TYPE, acks(n)));
  assert.deepEqual(client.state().types.find((s) => s.typeUrl === ROUTE_TYPE)!.subscribed, ['9080']);
});

test('the bearer token is never sent over a plaintext xDS connection', async (t) => {
  const server = new AdsTestServer();
  const port = await server.start();
  const dir = tempDir(t, 'rig-xds-token-');
  fs.writeFileSync(path.join(dir, 'token'), 'secret-token');
  const client = new XdsClient({ bootstrap: bootstrap(port), sink: new RecordingSink(), tokenFile: path.join(dir, 'token') });
  t.after(async () => {
    client.stop();
    await server.stop();
  });
  client.start();
  await server.waitFor(isType(CLUSTER_TYPE));
  assert.deepEqual(server.metadata[0]!.get('authorization'), []);
});

test('subscribes over ADS to the secrets the TLS contexts name (not the local default/ROOTCA), merged with the identity secrets', async (t) => {
  const server = new AdsTestServer();
  const port = await server.start();
  const sink = new RecordingSink();
  const shared = shareSecrets(sink);
  const client = new XdsClient({ bootstrap: bootstrap(port), sink: shared.xds, backoff: { initialMs: 50 } });
  t.after(async () => {
    client.stop();
    await server.stop();
  });
  client.start();
  const tls = (certs: string[], ca?: string) => ({
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: {
        tls_certificate_sds_secret_configs: certs.map((name) => ({ name, sds_config: { ads: {}, resource_api_version: 'V3' } })),
        ...(ca ? { validation_context_sds_secret_config: { name: ca, sds_config: { ads: {}, resource_api_version: 'V3' } } } : {}),
      },
    },
  });
  await server.waitFor(isType(CLUSTER_TYPE));
  server.push(CLUSTER_TYPE, 'v1', [{ ...staticCluster('egress'), transport_socket: tls(['kubernetes://client-cert'], 'kubernetes://client-cert-cacert') }, { ...staticCluster('mesh'), transport_socket: tls(['default'], 'ROOTCA') }]);
  const sds = await server.waitFor(isType(SECRET_TYPE));
  assert.deepEqual(sds.resource_names, ['kubernetes://client-cert', 'kubernetes://client-cert-cacert']);
  // The identity's secrets and the control plane's reach the proxy together.
  const secret = (name: string): EnvoyJson => ({ name, validation_context: { trusted_ca: { inline_string: 'x' } } });
  assert.deepEqual(shared.identity.apply(SECRET_TYPE, new Map([['ROOTCA', secret('ROOTCA')]]), '1'), []);
  const n = server.push(SECRET_TYPE, 's1', [secret('kubernetes://client-cert'), secret('kubernetes://client-cert-cacert')]);
  await server.waitFor(isType(SECRET_TYPE, acks(n)));
  assert.deepEqual(sink.names(SECRET_TYPE), ['ROOTCA', 'kubernetes://client-cert', 'kubernetes://client-cert-cacert']);
  assert.deepEqual(shared.identity.apply(SECRET_TYPE, new Map([['ROOTCA', secret('ROOTCA')], ['default', secret('default')]]), '2'), []);
  assert.deepEqual(sink.names(SECRET_TYPE), ['ROOTCA', 'default', 'kubernetes://client-cert', 'kubernetes://client-cert-cacert']);
  // A listener-side reference is followed too.
  server.push(LISTENER_TYPE, 'l1', [{ ...httpListener('gw', 8443, 'https.8443'), filter_chains: [{ ...(httpListener('gw', 8443, 'https.8443').filter_chains as EnvoyJson[])[0], transport_socket: tls(['kubernetes://gw-cert']) }] }]);
  const sds2 = await server.waitFor(isType(SECRET_TYPE, (r) => (r.resource_names ?? []).includes('kubernetes://gw-cert')));
  assert.deepEqual(sds2.resource_names, ['kubernetes://client-cert', 'kubernetes://client-cert-cacert', 'kubernetes://gw-cert']);
});
