// `rig analyze` reports what Istio would write into Gateway API status (Accepted=False,
// ResolvedRefs=False with the reason), at the file position of the field.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, runRig } from '../helpers/cli.ts';

test('rig analyze: a parent that does not exist and a backend that does not resolve', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rig-gwapi-analyze-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.yaml');
  await writeFile(
    file,
    `apiVersion: v1
kind: Service
metadata: { name: productpage }
spec: { ports: [{ name: http, port: 9080 }] }
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
`,
  );
  const r = await runRig(['analyze', '--use-live=false', '-f', dir]);
  assert.equal(r.code, 79, r.stderr + r.stdout);
  assert.equal(
    r.stdout,
    `Error [RIG0101] (HTTPRoute default/r ${file}:17:30) spec.parentRefs[1]: Accepted=False (NoMatchingParent): Gateway default/nogw does not exist — create the Gateway or fix parentRefs\n` +
      `Error [RIG0101] (HTTPRoute default/r ${file}:19:54) spec.rules[0].backendRefs[1]: ResolvedRefs=False (BackendNotFound): backend Service default/ratings does not exist — create the Service or fix the backendRef; requests to this backend get HTTP 500\n`,
  );
});

test("rig analyze: Istio's Egress Gateways task (Gateway API tab) is clean: the <name>-istio Service of a Gateway of class istio and a ServiceEntry parent resolve", async () => {
  const r = await runRig(['analyze', '--use-live=false', '-f', join(REPO_ROOT, 'examples/bookinfo/gateway-api/egress-gateway-cnn.yaml'), join(REPO_ROOT, 'examples/bookinfo/tasks/egress-gateway/service-entry-local-standin.yaml')]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout + r.stderr, /RIG0101/);
});

test("rig analyze: the <name>-istio Service of a Gateway has the ports of the ListenerSets it allows, as istiod's deployment controller gives it", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rig-gwapi-analyze-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'gateway.yaml');
  await writeFile(
    file,
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw }
spec:
  gatewayClassName: istio
  allowedListeners: { namespaces: { from: Same } }
  listeners: [{ name: http, port: 80, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: extra }
spec:
  parentRef: { name: gw }
  listeners: [{ name: plain, port: 8080, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: outside, namespace: other }
spec:
  parentRef: { name: gw, namespace: default }
  listeners: [{ name: plain, port: 9090, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: r }
spec:
  parentRefs: [{ name: gw }]
  rules: [{ backendRefs: [{ name: gw-istio, port: 8080 }, { name: gw-istio, port: 9090 }] }]
`,
  );
  const r = await runRig(['analyze', '--use-live=false', '-f', dir]);
  // The allowed ListenerSet's port is on the Service, declared HTTP (gRPC to it is warned about); the other namespace's is not.
  assert.equal(
    r.stdout,
    `Error [RIG0101] (ListenerSet other/outside ${file}:20:14) spec.parentRef: Accepted=False (NotAllowed): Gateway default/gw does not allow ListenerSets from namespace other (allowedListeners.namespaces.from: Same) — the Gateway owner allows it in spec.allowedListeners (from: Same, All or a Selector over Namespace labels)\n` +
      `Warning [RIG0102] (GRPCRoute default/r ${file}:28:27) spec.rules[0].backendRefs[0]: port 8080 of gw-istio.default.svc.cluster.local is declared HTTP: the gateway sends it HTTP/1.1, as Istio's does, and gRPC needs HTTP/2 — name the Service port grpc or http2 (grpc-<suffix>), or set its appProtocol to grpc or kubernetes.io/h2c\n`,
  );
});
