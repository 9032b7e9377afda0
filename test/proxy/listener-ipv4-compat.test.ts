// socket_address.ipv4_compat on a listener: bound to "::" it takes IPv4 connections only with
// ipv4_compat (peers then appear as ::ffff:a.b.c.d), as in Envoy; without it the socket is
// IPv6-only (IPV6_V6ONLY), where Node would otherwise bind dual-stack.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

const hasIpv6Loopback = await new Promise<boolean>((resolve) => {
  const probe = net.createServer().listen(0, '::1', () => probe.close(() => resolve(true)));
  probe.on('error', () => resolve(false));
});

test('a listener on :: is IPv6-only unless ipv4_compat is set', { skip: hasIpv6Loopback ? undefined : 'no IPv6 loopback' }, async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const any6 = (ipv4_compat?: boolean) => ({ address: { socket_address: { address: '::', port_value: 0, ...(ipv4_compat === undefined ? {} : { ipv4_compat }) } } });
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]);
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    listeners: [httpListener('v6only', route, {}, any6()), httpListener('dual', route, {}, any6(true))],
  });
  assert.equal(await connects('::1', h.port('v6only')), true);
  assert.equal(await connects('127.0.0.1', h.port('v6only')), false, 'IPv4 refused without ipv4_compat');
  assert.equal(await connects('::1', h.port('dual')), true);
  assert.equal((await request(h.port('dual'))).status, 200, 'IPv4 served with ipv4_compat');
  assert.equal(h.streams.at(-1)!.downstreamRemoteAddress?.startsWith('::ffff:127.0.0.1'), true);
});
