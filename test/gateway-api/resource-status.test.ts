// The status Istio writes on a route has one entry per parentRef: a parent the route cannot attach
// to is Accepted=False there only, as `rig get httproute -o yaml` shows it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gatewayApiResourceStatus } from '../../src/model/gateway-api/resource-status.ts';
import { buildPush, parseYaml } from '../xds/fixtures.ts';

test('route status: Accepted per parentRef, ResolvedRefs for every parent', () => {
  const push = buildPush(
    parseYaml(`apiVersion: v1
kind: Service
metadata: { name: productpage }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw }
spec:
  gatewayClassName: istio
  listeners: [{ name: http, port: 80, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: gw }, { name: nogw }]
  rules:
  - backendRefs: [{ name: productpage, port: 9080 }, { name: ratings, port: 9080 }]
`),
  );
  const status = gatewayApiResourceStatus(push.resources, push.gatewayApiDiagnostics, []).get('HTTPRoute default/r') as { parents: { parentRef: { name: string }; conditions: { type: string; status: string; reason: string }[] }[] };
  assert.deepEqual(
    status.parents.map((p) => [p.parentRef.name, ...p.conditions.map((c) => `${c.type}=${c.status} ${c.reason}`)]),
    [
      ['gw', 'Accepted=True Accepted', 'ResolvedRefs=False BackendNotFound'],
      ['nogw', 'Accepted=False NoMatchingParent', 'ResolvedRefs=False BackendNotFound'],
    ],
  );
});

test("Gateway status: each listener's attached routes, conditions and supported kinds, as Istio writes them; an invalid listener leaves the Gateway accepted (ListenersNotValid)", () => {
  const push = buildPush(
    parseYaml(`apiVersion: v1
kind: Service
metadata: { name: web }
spec: { selector: { app: web }, ports: [{ name: http, port: 80 }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw }
spec:
  gatewayClassName: istio
  listeners:
  - { name: http, port: 80, protocol: HTTP }
  - { name: https, port: 443, protocol: HTTPS, hostname: a.example.com, tls: { mode: Terminate, certificateRefs: [{ name: cert, namespace: other }] } }
  - { name: tcp, port: 9000, protocol: TCP }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: one }
spec:
  parentRefs: [{ name: gw, sectionName: http }]
  hostnames: [a.example.com, b.example.com]
  rules: [{ backendRefs: [{ name: web, port: 80 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: two }
spec:
  parentRefs: [{ name: gw, sectionName: http }]
  rules: [{ backendRefs: [{ name: web, port: 80 }] }]
`),
  );
  const status = gatewayApiResourceStatus(push.resources, push.gatewayApiDiagnostics, [], push).get('Gateway.gateway.networking.k8s.io default/gw') as {
    conditions: { type: string; status: string; reason: string }[];
    listeners: { name: string; attachedRoutes: number; conditions: { type: string; status: string; reason: string }[]; supportedKinds: { kind: string }[] }[];
  };
  assert.deepEqual(status.conditions[0], { type: 'Accepted', status: 'True', reason: 'ListenersNotValid', message: 'invalid listeners: https' });
  assert.deepEqual(
    status.listeners.map((l) => [l.name, l.attachedRoutes, l.conditions.map((c) => `${c.type}=${c.status} ${c.reason}`).join(', '), l.supportedKinds.map((k) => k.kind).join(',')]),
    [
      ['http', 2, 'Accepted=True Accepted, Conflicted=False NoConflicts, Programmed=True Programmed, ResolvedRefs=True ResolvedRefs', 'HTTPRoute,GRPCRoute'],
      ['https', 0, 'Accepted=True Accepted, Conflicted=False NoConflicts, Programmed=False Invalid, ResolvedRefs=False RefNotPermitted', 'HTTPRoute,GRPCRoute'],
      ['tcp', 0, 'Accepted=True Accepted, Conflicted=False NoConflicts, Programmed=True Programmed, ResolvedRefs=True ResolvedRefs', 'TCPRoute'],
    ],
  );
});
