// auto_host_rewrite: the Host header becomes the name of the chosen upstream host (the DNS name of
// a STRICT_DNS endpoint, an EDS endpoint's hostname); without a name it is left alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

test('auto_host_rewrite uses the upstream host name; hosts without one keep the request Host', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const dns = {
    name: 'dns',
    type: 'STRICT_DNS',
    connect_timeout: '1s',
    dns_lookup_family: 'V4_ONLY',
    load_assignment: { cluster_name: 'dns', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'localhost', port_value: up.port } } } }] }] },
  };
  const named = staticCluster('named', [up.port]);
  (named.load_assignment as { endpoints: { lb_endpoints: { endpoint: Record<string, unknown> }[] }[] }).endpoints[0].lb_endpoints[0].endpoint.hostname = 'backend.internal';
  await configure(h, {
    clusters: [dns, named, staticCluster('plain', [up.port])],
    listeners: [
      httpListener(
        'l',
        routeConfig('r', [
          { match: { prefix: '/dns' }, route: { cluster: 'dns', auto_host_rewrite: true } },
          { match: { prefix: '/named' }, route: { cluster: 'named', auto_host_rewrite: true } },
          { match: { prefix: '/plain' }, route: { cluster: 'plain', auto_host_rewrite: true } },
        ]),
      ),
    ],
  });
  const host = async (path: string) => (await request(h.port('l'), { path, headers: { host: 'front.example:8080' } })).json().headers.host;
  assert.equal(await host('/dns'), 'localhost');
  assert.equal(await host('/named'), 'backend.internal');
  assert.equal(await host('/plain'), 'front.example:8080');
});
