// tcp_proxy hash_policy source_ip (accepted and ignored before): with a RING_HASH cluster every
// connection from one client address reaches the same host, as in Envoy; without it the ring
// picks at random. metadata_match (subset load balancing) is warned about.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { addr, configure, startTestRuntime, staticCluster, LISTENER_TYPE } from './harness.ts';
import { listenLocal } from '../helpers/listen.ts';

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

/** Connects, reads the server's name and closes. */
function nameFrom(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('end', () => {
      s.end();
      resolve(out);
    });
    s.on('error', reject);
  });
}

test('hash_policy source_ip keeps a client on one host of a ring-hash cluster', async (t) => {
  const ports: number[] = [];
  for (const name of ['a', 'b', 'c']) ports.push(await listenLocal(net.createServer((s) => s.end(name)), t));
  const h = await startTestRuntime(t);
  const tcp = (name: string, extra: Record<string, unknown>) => ({ name, address: addr(0), filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: 'ring', ...extra } }] }] });
  await configure(h, {
    clusters: [staticCluster('ring', ports, { lb_policy: 'RING_HASH' })],
    listeners: [tcp('hashed', { hash_policy: [{ source_ip: {} }] }), tcp('random', {})],
  });
  const names = async (l: string) => {
    const out = new Set<string>();
    for (let i = 0; i < 12; i++) out.add(await nameFrom(h.port(l)));
    return out;
  };
  assert.equal((await names('hashed')).size, 1, 'one client address, one host');
  assert.ok((await names('random')).size > 1, 'without a hash policy the ring picks at random');

  assert.deepEqual(h.apply(LISTENER_TYPE, [tcp('subset', { metadata_match: { filter_metadata: { 'envoy.lb': { version: 'v1' } } } })]), []);
  assert.match([...h.rt.warnings.values()].flat().join('\n'), /typed_config\.metadata_match: subset load balancing is not supported/);
  const twoPolicies = h.apply(LISTENER_TYPE, [tcp('two', { hash_policy: [{ source_ip: {} }, { source_ip: {} }] })]);
  assert.match(twoPolicies.join('\n'), /hash_policy: at most one hash policy/);
});
