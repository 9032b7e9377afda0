// Cluster common_http_protocol_options.max_connection_duration (Istio's connectionPool.tcp.
// maxConnectionDuration): an upstream HTTP/1.1 connection older than that takes no new request and
// closes (at once when idle, after its exchange when busy), as Envoy drains it; the next request
// opens a new connection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import { waitFor } from '../helpers/wait.ts';

const HTTP_OPTS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

test('max_connection_duration retires upstream HTTP/1.1 connections; without it one connection serves every request', async (t) => {
  const aged = await startUpstream('aged');
  const kept = await startUpstream('kept');
  const h = await startTestRuntime(t, [aged, kept]);
  const opts = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTS, common_http_protocol_options: { max_connection_duration: '0.2s' }, explicit_http_config: { http_protocol_options: {} } } } };
  await configure(h, {
    clusters: [staticCluster('aged', [aged.port], opts), staticCluster('kept', [kept.port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/aged' }, route: { cluster: 'aged' } }, { match: { prefix: '/' }, route: { cluster: 'kept' } }]))],
  });
  // One request at a time: a pooled connection is reused until it reaches its age.
  await waitFor('a second upstream connection once the first one aged', async () => {
    assert.equal((await request(h.port('l'), { path: '/aged' })).status, 200);
    return aged.connections >= 2 ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
  for (let i = 0; i < aged.requests.length; i++) assert.equal((await request(h.port('l'), { path: '/kept' })).status, 200);
  assert.equal(kept.connections, 1, 'the cluster without the option reuses its one connection');
});
