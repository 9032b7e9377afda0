// VirtualService redirect ports as istiod's ApplyRedirect translates them (port_redirect): port or
// derivePort FROM_REQUEST_PORT (the port the routes serve), none for FROM_PROTOCOL_DEFAULT, and left
// out when it is the default port of the redirect's scheme (its own, else https on a TLS server).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, gatewayProxy, parseYaml } from './fixtures.ts';

const CONFIG = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  servers:
  - { port: { number: 80, name: http, protocol: HTTP }, hosts: ['*'] }
  - { port: { number: 8080, name: http-alt, protocol: HTTP }, hosts: ['*'] }
  - { port: { number: 443, name: https, protocol: HTTPS }, hosts: ['*'], tls: { mode: SIMPLE, credentialName: cert } }
  - { port: { number: 8443, name: https-alt, protocol: HTTPS }, hosts: ['*'], tls: { mode: SIMPLE, credentialName: cert } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: istio-system }
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - { name: request, match: [{ uri: { prefix: /request } }], redirect: { uri: /r, derivePort: FROM_REQUEST_PORT } }
  - { name: default, match: [{ uri: { prefix: /default } }], redirect: { authority: a.example, derivePort: FROM_PROTOCOL_DEFAULT } }
  - { name: http-on-443, match: [{ uri: { prefix: /to-http } }], redirect: { scheme: http, derivePort: FROM_REQUEST_PORT } }
  - { name: port-443, match: [{ uri: { prefix: /port } }], redirect: { port: 443 } }
`;

test('derivePort and port become port_redirect as istiod makes it, per served port and TLS', () => {
  const gw = gatewayProxy();
  const push = buildPush(parseYaml(CONFIG), [gw]);
  const ports = (routeName: string): Record<string, unknown> => {
    const [rc] = GENERATORS[ROUTE_TYPE].generate(push, gw, [routeName]);
    const routes = (rc.virtual_hosts as EnvoyJson[])[0].routes as EnvoyJson[];
    return Object.fromEntries(routes.map((r) => [r.name, (r.redirect as EnvoyJson).port_redirect ?? '-']));
  };
  assert.deepEqual(ports('http.80'), { request: '-', default: '-', 'http-on-443': '-', 'port-443': 443 });
  assert.deepEqual(ports('http.8080'), { request: 8080, default: '-', 'http-on-443': 8080, 'port-443': 443 });
  assert.deepEqual(ports('https.443.https.gw.istio-system'), { request: '-', default: '-', 'http-on-443': 443, 'port-443': '-' });
  assert.deepEqual(ports('https.8443.https-alt.gw.istio-system'), { request: 8443, default: '-', 'http-on-443': 8443, 'port-443': '-' });
});
