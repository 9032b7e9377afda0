// DNS clusters as istiod builds them: every STRICT_DNS (ServiceEntry resolution DNS) and LOGICAL_DNS
// (DNS_ROUND_ROBIN) cluster, subsets included, carries dns_refresh_rate from MeshConfig
// dnsRefreshRate (Istio's default 60s), respect_dns_ttl: true and dns_jitter from istiod's
// PILOT_DNS_JITTER_DURATION (default 100ms; read from the control plane's environment).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CLUSTER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, explicitSidecar, parseYaml } from './fixtures.ts';

const CONFIG = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: strict, namespace: default }
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: logical, namespace: default }
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  resolution: DNS_ROUND_ROBIN
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: static, namespace: default }
spec:
  hosts: [static.example.com]
  location: MESH_EXTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 192.0.2.1 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: strict, namespace: default }
spec:
  host: api.example.com
  subsets: [{ name: v1, labels: { version: v1 } }]
`;

/** The DNS fields of each cluster of a sidecar, by cluster name. */
function dnsFields(mesh?: unknown): Record<string, EnvoyJson> {
  const proxy = explicitSidecar('client', 'default', { app: 'client' }, 'client', []);
  const push = buildPush(parseYaml(CONFIG), [proxy], mesh ? { mesh: parseMeshConfig(mesh) } : {});
  const out: Record<string, EnvoyJson> = {};
  for (const c of GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined)) {
    if (!String(c.name).startsWith('outbound|')) continue;
    assertEnvoyResource(CLUSTER_TYPE, c);
    out[String(c.name)] = { type: c.type, dns_refresh_rate: c.dns_refresh_rate, respect_dns_ttl: c.respect_dns_ttl, dns_jitter: c.dns_jitter };
  }
  return out;
}

const NONE = { dns_refresh_rate: undefined, respect_dns_ttl: undefined, dns_jitter: undefined };

test("DNS clusters carry istiod's refresh fields: MeshConfig dnsRefreshRate (default 60s), respect_dns_ttl, dns_jitter 100ms; other clusters none", () => {
  const dns = { dns_refresh_rate: '60s', respect_dns_ttl: true, dns_jitter: '0.1s' };
  assert.deepEqual(dnsFields(), {
    'outbound|443||api.example.com': { type: 'STRICT_DNS', ...dns },
    'outbound|443|v1|api.example.com': { type: 'STRICT_DNS', ...dns },
    'outbound|5432||db.example.com': { type: 'LOGICAL_DNS', ...dns },
    'outbound|80||static.example.com': { type: 'EDS', ...NONE },
  });
  const fields = dnsFields({ dnsRefreshRate: '5s' });
  assert.deepEqual([fields['outbound|443||api.example.com'].dns_refresh_rate, fields['outbound|5432||db.example.com'].dns_refresh_rate], ['5s', '5s']);
});

test('PILOT_DNS_JITTER_DURATION in the control plane environment sets dns_jitter (0 disables it: "0s", as istiod)', async () => {
  // Features are read once per process: a child process per value.
  const at = (p: string) => JSON.stringify(new URL(p, import.meta.url).pathname);
  const script = `import { buildPush, explicitSidecar, parseYaml } from ${at('./fixtures.ts')};
import { GENERATORS } from ${at('../../src/xds/server/generators.ts')};
import { CLUSTER_TYPE } from ${at('../../src/envoy/index.ts')};
const proxy = explicitSidecar('client', 'default', { app: 'client' }, 'client', []);
const clusters = GENERATORS[CLUSTER_TYPE].generate(buildPush(parseYaml(process.env.CONFIG), [proxy]), proxy, undefined);
console.log(JSON.stringify(clusters.find((c) => c.name === 'outbound|443||api.example.com').dns_jitter));`;
  const jitter = async (value: string) => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, CONFIG, PILOT_DNS_JITTER_DURATION: value } });
    return JSON.parse(stdout) as string;
  };
  assert.deepEqual([await jitter('250ms'), await jitter('0')], ['0.25s', '0s']);
});
