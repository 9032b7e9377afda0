// ORIGINAL_DST clusters with original_dst_lb_config.upstream_port_override: the connection goes to
// the original destination's address at the override port (every path picks ORIGINAL_DST hosts
// through Cluster.originalDstHost: HTTP, tcp_proxy, tunnels; here the destination comes from
// use_http_header); metadata_key is not supported and is named in a warning.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, deadPort, httpListener, request, startTestRuntime, startUpstream } from './harness.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { compileCluster } from '../../src/proxy/upstream/cluster-config.ts';

test('upstream_port_override replaces the original destination port', async (t) => {
  const up = await startUpstream('override');
  const h = await startTestRuntime(t, [up]);
  const nowhere = await deadPort();
  await configure(h, {
    clusters: [
      { name: 'byHeader', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '1s', original_dst_lb_config: { use_http_header: true, upstream_port_override: up.port } },
      { name: 'plain', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '1s', original_dst_lb_config: { use_http_header: true } },
    ],
    routes: [
      {
        name: 'r',
        virtual_hosts: [
          { name: 'o', domains: ['override'], routes: [{ match: { prefix: '/' }, route: { cluster: 'byHeader' } }] },
          { name: 'p', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'plain' } }] },
        ],
      },
    ],
    listeners: [httpListener('http', 'r')],
  });
  const headers = (host: string) => ({ host, 'x-envoy-original-dst-host': `127.0.0.1:${nowhere}` });
  const r = await request(h.port('http'), { path: '/x', headers: headers('override') });
  assert.equal(r.status, 200);
  assert.equal(r.json().server, 'override');
  assert.equal(h.streams.at(-1)!.upstreamHost, `127.0.0.1:${up.port}`);
  // The same destination without the override: the port it names, where nothing listens.
  const refused = await request(h.port('http'), { path: '/x', headers: headers('plain') });
  assert.equal(refused.status, 503);
  assert.equal(h.streams.at(-1)!.upstreamHost, `127.0.0.1:${nowhere}`);
});

test('upstream_port_override out of range is an error; metadata_key is named in a warning', () => {
  const issues = new Issues();
  compileCluster({ name: 'c', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', original_dst_lb_config: { upstream_port_override: { value: 70000 }, metadata_key: { key: 'k', path: [{ key: 'p' }] } } }, 'cluster c', issues);
  assert.deepEqual(issues.errors, ['cluster c.original_dst_lb_config.upstream_port_override: must be a port from 1 to 65535 (got 70000)']);
  assert.equal(issues.warnings.length, 1);
  assert.match(issues.warnings[0], /original_dst_lb_config\.metadata_key: .*not supported/);
});
