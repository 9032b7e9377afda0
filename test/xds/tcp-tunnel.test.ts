// DestinationRule trafficPolicy.tunnel through the translation, as istiod's tunnelingconfig.Apply:
// the outbound tcp_proxy of TCP and TLS routes (sidecar and gateway) to the rule's host gets
// tunneling_config (hostname targetHost:targetPort, use_post for POST); a subset destination takes
// its subset's tunnel only, weighted destinations the top-level one; HTTP ports never get it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LISTENER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, gatewayProxy, parseYaml, podSidecar } from './fixtures.ts';

const CONFIG = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: forward-proxy, namespace: default }
spec:
  hosts: [proxy.example.com]
  addresses: [240.240.0.1]
  location: MESH_EXTERNAL
  ports: [{ number: 3128, name: tcp, protocol: TCP }, { number: 8080, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 10.0.0.9, labels: { pool: a } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.com]
  addresses: [240.240.0.2]
  location: MESH_EXTERNAL
  ports: [{ number: 5432, name: tcp, protocol: TCP }]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: default }
spec:
  hosts: [secure.example.com]
  addresses: [240.240.0.3]
  location: MESH_EXTERNAL
  ports: [{ number: 443, name: tls, protocol: TLS }]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: forward-proxy, namespace: default }
spec:
  host: proxy.example.com
  trafficPolicy: { tunnel: { targetHost: db.example.com, targetPort: 5432 } }
  subsets:
  - name: tls
    labels: { pool: a }
    trafficPolicy: { tunnel: { protocol: POST, targetHost: "2001:db8::7", targetPort: 443 } }
  - name: plain
    labels: { pool: a }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.com]
  gateways: [mesh, tcp-gw]
  tcp: [{ route: [{ destination: { host: proxy.example.com, port: { number: 3128 } } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: secure, namespace: default }
spec:
  hosts: [secure.example.com]
  tls:
  - match: [{ port: 443, sniHosts: [secure.example.com] }]
    route: [{ destination: { host: proxy.example.com, subset: tls, port: { number: 3128 } } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: tcp-gw, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 31400, name: tcp, protocol: TCP }, hosts: ["*"] }]
`;

function tcpProxies(listener: EnvoyJson): EnvoyJson[] {
  return (listener.filter_chains as EnvoyJson[]).flatMap((c) => (c.filters as EnvoyJson[]).filter((f) => f.name === 'envoy.filters.network.tcp_proxy').map((f) => f.typed_config as EnvoyJson));
}

function listenerOn(listeners: EnvoyJson[], name: string): EnvoyJson {
  const l = listeners.find((x) => x.name === name);
  assert.ok(l, `listener ${name} among ${listeners.map((x) => x.name).join(', ')}`);
  assertEnvoyResource(LISTENER_TYPE, l);
  return l;
}

test('a tcp route to the tunnel proxy host gets its tunneling_config; a tls route to a subset, the subset tunnel (POST)', () => {
  const app = podSidecar('app-0', 'default', { app: 'app' }, 'app', [], '198.18.0.40');
  const gw = gatewayProxy();
  const push = buildPush(parseYaml(CONFIG), [app, gw]);
  const listeners = GENERATORS[LISTENER_TYPE].generate(push, app, undefined);

  const db = tcpProxies(listenerOn(listeners, '240.240.0.2_5432'));
  assert.deepEqual(db.map((c) => [c.cluster, c.tunneling_config]), [['outbound|3128||proxy.example.com', { hostname: 'db.example.com:5432' }]]);

  const tls = tcpProxies(listenerOn(listeners, '240.240.0.3_443')).find((c) => c.cluster === 'outbound|3128|tls|proxy.example.com');
  assert.deepEqual(tls?.tunneling_config, { hostname: '[2001:db8::7]:443', use_post: true });

  // The proxy's own TCP port (its default route, no subset): the top-level tunnel too, as istiod.
  assert.deepEqual(tcpProxies(listenerOn(listeners, '240.240.0.1_3128'))[0].tunneling_config, { hostname: 'db.example.com:5432' });
  // HTTP ports go through the HCM: no tcp_proxy, nothing to tunnel.
  const http = listeners.find((l) => l.name === '0.0.0.0_8080');
  assert.ok(!http || tcpProxies(http).every((c) => !c.tunneling_config));

  // A gateway's TCP server with the same tcp route.
  const gwTcp = tcpProxies(listenerOn(GENERATORS[LISTENER_TYPE].generate(push, gw, undefined), '0.0.0.0_31400'));
  assert.deepEqual(gwTcp[0].tunneling_config, { hostname: 'db.example.com:5432' });
});

test('a subset without a tunnel gets none (the top-level one is not inherited); weighted routes take the top-level one', () => {
  const app = podSidecar('app-0', 'default', { app: 'app' }, 'app', [], '198.18.0.40');
  const subsetPlain = CONFIG.replace('tcp: [{ route: [{ destination: { host: proxy.example.com, port: { number: 3128 } } }] }]', 'tcp: [{ route: [{ destination: { host: proxy.example.com, subset: plain, port: { number: 3128 } } }] }]');
  let listeners = GENERATORS[LISTENER_TYPE].generate(buildPush(parseYaml(subsetPlain), [app]), app, undefined);
  assert.equal(tcpProxies(listenerOn(listeners, '240.240.0.2_5432'))[0].tunneling_config, undefined);

  const weighted = CONFIG.replace(
    'tcp: [{ route: [{ destination: { host: proxy.example.com, port: { number: 3128 } } }] }]',
    'tcp: [{ route: [{ destination: { host: proxy.example.com, subset: tls, port: { number: 3128 } }, weight: 50 }, { destination: { host: proxy.example.com, subset: plain, port: { number: 3128 } }, weight: 50 }] }]',
  );
  listeners = GENERATORS[LISTENER_TYPE].generate(buildPush(parseYaml(weighted), [app]), app, undefined);
  const [w] = tcpProxies(listenerOn(listeners, '240.240.0.2_5432'));
  assert.equal((w.weighted_clusters as EnvoyJson).clusters instanceof Array, true);
  assert.deepEqual(w.tunneling_config, { hostname: 'db.example.com:5432' });
});

test('without a tunnel in any DestinationRule the listeners are left as they are', () => {
  const app = podSidecar('app-0', 'default', { app: 'app' }, 'app', [], '198.18.0.40');
  const plain = CONFIG.replace('  trafficPolicy: { tunnel: { targetHost: db.example.com, targetPort: 5432 } }\n', '').replace('    trafficPolicy: { tunnel: { protocol: POST, targetHost: "2001:db8::7", targetPort: 443 } }\n', '');
  const listeners = GENERATORS[LISTENER_TYPE].generate(buildPush(parseYaml(plain), [app]), app, undefined);
  assert.ok(listeners.flatMap(tcpProxies).every((c) => c.tunneling_config === undefined));
});
