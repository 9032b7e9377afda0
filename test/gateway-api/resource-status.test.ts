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
