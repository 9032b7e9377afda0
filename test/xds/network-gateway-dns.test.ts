// MeshNetworks gateways given by hostname, as istiod with RESOLVE_HOSTNAME_GATEWAYS (its default):
// the control plane resolves them (here against a DNS server the test runs on 127.0.0.1), uses one
// gateway per address, refreshes the answer by its TTL and pushes when it changes; a name that does
// not resolve is not used, with the reason on /debug/networkz.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { MemoryConfigStore } from '../../src/config/index.ts';
import { ENDPOINT_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { DEFAULT_MESH_CONFIG } from '../../src/model/mesh-config.ts';
import { AdsClient } from '../../src/xds/ads-client.ts';
import { startControlPlane } from '../../src/xds/controlplane.ts';
import { parseYaml } from './fixtures.ts';

const CLUSTER = 'outbound|80||web.example.internal';
const YAML = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.example.internal]
  location: MESH_INTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints:
  - { address: 10.1.0.1, network: network1, labels: { security.istio.io/tlsMode: istio } }
  - { address: 10.2.0.1, network: network2, labels: { security.istio.io/tlsMode: istio } }`;

/** A DNS server answering `eastwest.mesh.test` A with `ip.current` (TTL 1 s), NXDOMAIN for other names. */
async function startDns(ip: { current: string }): Promise<{ port: number; close(): void }> {
  const udp = dgram.createSocket('udp4');
  udp.on('message', (m, r) => {
    const q = dnsPacket.decode(m);
    const { name, type } = q.questions![0]!;
    const known = name === 'eastwest.mesh.test';
    const answers = known && type === 'A' ? [{ name, type: 'A' as const, class: 'IN' as const, ttl: 1, data: ip.current }] : [];
    udp.send(dnsPacket.encode({ id: q.id, type: 'response', flags: known ? 0 : 3, questions: q.questions, answers }), r.port, r.address);
  });
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  return { port: udp.address().port, close: () => udp.close() };
}

function addresses(r: { resources: EnvoyJson[] }): string[] {
  return (r.resources[0]?.endpoints as EnvoyJson[] | undefined ?? []).flatMap((g) => (g.lb_endpoints as EnvoyJson[]).map((e) => {
    const a = ((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address as EnvoyJson;
    return `${a.address as string}:${a.port_value as number}`;
  })).sort();
}

test('a gateway hostname is resolved, used at each address, refreshed and pushed when its answer changes; an unknown name is not used, with why', async (t) => {
  const ip = { current: '203.0.113.7' };
  const dns = await startDns(ip);
  t.after(() => dns.close());
  const store = new MemoryConfigStore();
  store.apply(parseYaml(YAML));
  const mesh = { ...DEFAULT_MESH_CONFIG, meshNetworks: { networks: { network2: { gateways: [{ address: 'eastwest.mesh.test', port: 15443 }, { address: 'nowhere.mesh.test', port: 15443 }] } } } };
  // The refresh floor is lowered from istiod's 30 s so that the TTL of 1 s drives the test.
  const cp = await startControlPlane({ store, mesh, xdsPort: 0, monitoringPort: 0, debounceMs: 10, debounceMaxMs: 100, gatewayDns: { servers: [`127.0.0.1:${dns.port}`], minTtlMs: 200 } });
  const c = new AdsClient(`127.0.0.1:${cp.ports.xds}`, { id: 'sidecar~198.18.0.9~client-0.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { app: 'client' }, INSTANCE_IPS: '198.18.0.9', NETWORK: 'network1' } });
  t.after(async () => {
    c.close();
    await cp.stop();
  });
  c.onResponse = (r) => c.ack(r, [CLUSTER]);
  c.subscribe(ENDPOINT_TYPE, [CLUSTER]);

  // The first push does not wait for DNS: network2 has no usable gateway yet, so it is reached directly.
  const first = await c.next(ENDPOINT_TYPE);
  assert.deepEqual(addresses(first), ['10.1.0.1:80', '10.2.0.1:80']);
  // The answer arrives: network2's endpoint is reached through the resolved gateway.
  const resolved = await c.next(ENDPOINT_TYPE, (r) => addresses(r).includes('203.0.113.7:15443'), 10_000);
  assert.deepEqual(addresses(resolved), ['10.1.0.1:80', '203.0.113.7:15443']);
  const networkz = (await (await fetch(`http://127.0.0.1:${cp.ports.monitoring}/debug/networkz`)).json()) as { gateways: { address: string }[]; unusable: string[] };
  assert.deepEqual(networkz.gateways.map((g) => g.address), ['203.0.113.7']);
  assert.equal(networkz.unusable.length, 1);
  assert.match(networkz.unusable[0]!, /network network2: gateway address nowhere\.mesh\.test is not used: DNS: no A or AAAA record \(ENOTFOUND\)/);

  // The name now answers another address: the refresh (by its TTL) pushes it.
  ip.current = '203.0.113.8';
  const moved = await c.next(ENDPOINT_TYPE, (r) => addresses(r).includes('203.0.113.8:15443'), 10_000);
  assert.deepEqual(addresses(moved), ['10.1.0.1:80', '203.0.113.8:15443']);
});
