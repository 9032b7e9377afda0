// Gateway API kinds: read from YAML as users write them (kind: Gateway, apiVersion
// gateway.networking.k8s.io/v1), kept apart from Istio's Gateway inside (KubernetesGateway), and
// shown back with the user's kind everywhere: diagnostics, rig apply's files and messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeResource, loadDocuments, loadPaths, resolveResourceName } from '../../src/api/index.ts';
import { applyResource } from '../../src/local/applied-config.ts';

const BOOKINFO_GATEWAY = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bookinfo
spec:
  parentRefs:
  - name: bookinfo-gateway
  rules:
  - matches:
    - path:
        type: Exact
        value: /productpage
    - path:
        type: PathPrefix
        value: /static
    backendRefs:
    - name: productpage
      port: 9080
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*"]
`;

test("Istio's samples/bookinfo/gateway-api/bookinfo-gateway.yaml is read, beside an Istio Gateway of the same name", () => {
  const r = loadDocuments(BOOKINFO_GATEWAY, 'bookinfo-gateway.yaml');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity !== 'Info'), []);
  assert.deepEqual(
    r.resources.map((x) => [x.apiVersion, x.kind, x.metadata.namespace, x.metadata.name]),
    [
      ['gateway.networking.k8s.io/v1', 'KubernetesGateway', 'default', 'bookinfo-gateway'],
      ['gateway.networking.k8s.io/v1', 'HTTPRoute', 'default', 'bookinfo'],
      ['networking.istio.io/v1', 'Gateway', 'default', 'bookinfo-gateway'],
    ],
  );
  assert.equal(describeResource(r.resources[0]), 'Gateway.gateway.networking.k8s.io default/bookinfo-gateway');
  assert.equal(describeResource(r.resources[1]), 'HTTPRoute default/bookinfo');
  assert.equal(describeResource(r.resources[2]), 'Gateway default/bookinfo-gateway');
});

test('every kind and served version is read; GatewayClass is cluster-scoped', () => {
  const docs = [
    ['v1', 'GatewayClass', 'spec: { controllerName: istio.io/gateway-controller }'],
    ['v1beta1', 'GatewayClass', 'spec: { controllerName: istio.io/gateway-controller }'],
    ['v1beta1', 'Gateway', 'spec: { gatewayClassName: istio, listeners: [{ name: a, port: 80, protocol: HTTP }] }'],
    ['v1beta1', 'HTTPRoute', 'spec: {}'],
    ['v1', 'GRPCRoute', 'spec: { rules: [{ matches: [{ method: { service: helloworld.Greeter } }] }] }'],
    ['v1beta1', 'ReferenceGrant', 'spec: { from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a }], to: [{ group: "", kind: Service }] }'],
    ['v1', 'ReferenceGrant', 'spec: { from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a }], to: [{ group: "", kind: Service }] }'],
    ['v1alpha2', 'TCPRoute', 'spec: { rules: [{ backendRefs: [{ name: tcp-echo-v1, port: 9000, weight: 80 }] }] }'],
    ['v1alpha2', 'TLSRoute', 'spec: { rules: [{ backendRefs: [{ name: nginx, port: 443 }] }] }'],
    ['v1alpha3', 'TLSRoute', 'spec: { hostnames: [nginx.example.com], rules: [{ backendRefs: [{ name: nginx, port: 443 }] }] }'],
    ['v1', 'TLSRoute', 'spec: { hostnames: ["*.example.com"], rules: [{ backendRefs: [{ name: nginx, port: 443 }] }] }'],
  ];
  const text = docs.map(([v, k, spec], i) => `apiVersion: gateway.networking.k8s.io/${v}\nkind: ${k}\nmetadata: { name: x${i}, namespace: ns1 }\n${spec}\n`).join('---\n');
  const r = loadDocuments(text, 'all.yaml');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.resources.map((x) => `${x.kind}/${x.metadata.namespace}`), ['GatewayClass/', 'GatewayClass/', 'KubernetesGateway/ns1', 'HTTPRoute/ns1', 'GRPCRoute/ns1', 'ReferenceGrant/ns1', 'ReferenceGrant/ns1', 'TCPRoute/ns1', 'TLSRoute/ns1', 'TLSRoute/ns1', 'TLSRoute/ns1']);
});

test('TCPRoute and TLSRoute: backendRefs need a port, later rules are unused, TLSRoute hostnames are required from v1alpha3', () => {
  const r = loadDocuments(
    `apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: t }
spec:
  rules:
  - backendRefs: [{ name: a }]
  - backendRefs: [{ name: b, port: 9000, weight: -1 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: { name: s }
spec:
  rules: [{ backendRefs: [] }]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: { name: h }
spec:
  hostnames: [Bad_Name]
  rules: [{ backendRefs: [{ name: a, port: 443 }] }]
`,
    'l4.yaml',
  );
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.severity} ${d.resource} ${d.path}: ${d.message}`),
    [
      'Error TCPRoute default/t spec.rules[0].backendRefs[0]: backendRef a needs a port',
      'Error TCPRoute default/t spec.rules[1].backendRefs[0].weight: weight -1 is out of range',
      'Warning TCPRoute default/t spec.rules[1]: only the first rule of a TCPRoute is used: a rule has no matches, so the first takes every connection',
      'Error TLSRoute default/s spec.rules[0].backendRefs: a rule needs at least one backendRef',
      'Error TLSRoute default/s spec.hostnames: hostnames is required in gateway.networking.k8s.io/v1',
      'Error TLSRoute default/h spec.hostnames[0]: "Bad_Name" is not a hostname',
    ],
  );
});

test('versions not served, unknown fields and broken CEL rules are errors naming the path; other Gateway API kinds are warned about', () => {
  const r = loadDocuments(
    `apiVersion: gateway.networking.k8s.io/v1beta1
kind: GRPCRoute
metadata: { name: a }
spec: {}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: b }
spec:
  rules:
  - matches:
    - path: { type: PathPrefix, value: api }
    backendRefz: []
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: c }
spec:
  gatewayClassName: istio
  listeners:
  - { name: https, port: 443, protocol: HTTPS }
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: d }
spec: {}
`,
    'bad.yaml',
  );
  assert.deepEqual(r.resources, []);
  const seen = r.diagnostics.map((d) => `${d.severity} ${d.resource ?? ''} ${d.path ?? ''}: ${d.message}`);
  assert.deepEqual(seen, [
    'Error GRPCRoute a apiVersion: GRPCRoute is not served as gateway.networking.k8s.io/v1beta1',
    'Error HTTPRoute default/b spec.rules[0].backendRefz: unknown field "backendRefz"',
    'Error Gateway.gateway.networking.k8s.io default/c spec.listeners[0]: tls must be set for protocol HTTPS',
    'Error TCPRoute default/d spec: missing required field "rules"',
  ]);
  const path = loadDocuments('apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: b }\nspec: { rules: [{ matches: [{ path: { value: api } }] }] }\n', 'p.yaml');
  assert.equal(path.diagnostics[0]?.message, 'value must be an absolute path');
  assert.equal(path.diagnostics[0]?.path, 'spec.rules[0].matches[0].path.value');
});

test('an unsupported field is a warning that names it', () => {
  const r = loadDocuments('apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: r }\nspec: { rules: [{ sessionPersistence: { sessionName: s } }] }\n', 'w.yaml');
  assert.equal(r.resources.length, 1);
  assert.deepEqual(r.diagnostics.map((d) => [d.severity, d.path]), [['Warning', 'spec.rules[0].sessionPersistence']]);
  assert.match(r.diagnostics[0].message, /not implemented by Istio either: istio\/istio#55839/);
  const cors = loadDocuments('apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: r }\nspec: { rules: [{ filters: [{ type: CORS, cors: { allowOrigins: ["https://ok.example", "ftp://x", "https://a/b"], maxAge: 0 } }] }] }\n', 'c.yaml');
  assert.deepEqual(cors.diagnostics.map((d) => [d.severity, d.path]), [['Error', 'spec.rules[0].filters[0].cors.allowOrigins[1]'], ['Error', 'spec.rules[0].filters[0].cors.allowOrigins[2]'], ['Error', 'spec.rules[0].filters[0].cors.maxAge']]);
});

test("rig apply writes the user's kind, so the file reads back as the same resource", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rig-gwapi-'));
  try {
    const [gw, route, istioGw] = loadDocuments(BOOKINFO_GATEWAY, 'in.yaml').resources;
    for (const r of [gw, route, istioGw]) assert.equal(applyResource(dir, r), 'created');
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, ['gateway.default.bookinfo-gateway.yaml', 'gateway.gateway.networking.k8s.io.default.bookinfo-gateway.yaml', 'httproute.default.bookinfo.yaml']);
    assert.match(readFileSync(path.join(dir, files[1]), 'utf8'), /^apiVersion: gateway.networking.k8s.io\/v1\nkind: Gateway\n/);
    const back = await loadPaths([dir]);
    assert.deepEqual(back.diagnostics, []);
    assert.deepEqual(back.resources.map((r) => r.kind).sort(), ['Gateway', 'HTTPRoute', 'KubernetesGateway']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI resource names resolve as kubectl resolves them', () => {
  assert.equal(resolveResourceName('gateways.gateway.networking.k8s.io'), 'KubernetesGateway');
  assert.equal(resolveResourceName('gtw'), 'KubernetesGateway');
  assert.equal(resolveResourceName('Gateway.gateway.networking.k8s.io'), 'KubernetesGateway');
  assert.equal(resolveResourceName('gateways'), 'Gateway');
  assert.equal(resolveResourceName('gateways.networking.istio.io'), 'Gateway');
  assert.equal(resolveResourceName('httproute'), 'HTTPRoute');
  assert.equal(resolveResourceName('httproutes'), 'HTTPRoute');
  assert.equal(resolveResourceName('grpcroutes'), 'GRPCRoute');
  assert.equal(resolveResourceName('referencegrants'), 'ReferenceGrant');
  assert.equal(resolveResourceName('nothing'), undefined);
});

test("listener tls.options: Istio's gateway.istio.io/tls-terminate-mode is read (SIMPLE, MUTUAL, ISTIO_MUTUAL, the last without certificateRefs); a bad value is an error, other keys warnings", () => {
  const listener = (name: string, tls: string) => `  - { name: ${name}, port: 443, protocol: HTTPS, hostname: ${name}.example.com, tls: ${tls} }\n`;
  const r = loadDocuments(
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: g }
spec:
  gatewayClassName: istio
  listeners:
${listener('mutual', '{ certificateRefs: [{ name: c }], options: { gateway.istio.io/tls-terminate-mode: MUTUAL } }')}${listener('mesh', '{ options: { gateway.istio.io/tls-terminate-mode: ISTIO_MUTUAL } }')}${listener('bad', '{ certificateRefs: [{ name: c }], options: { gateway.istio.io/tls-terminate-mode: OPTIONAL } }')}${listener('other', '{ certificateRefs: [{ name: c }], options: { example.com/cipher: x } }')}`,
    'tls.yaml',
  );
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.severity} ${d.path}`),
    ['Error spec.listeners[2].tls.options["gateway.istio.io/tls-terminate-mode"]', 'Warning spec.listeners[3].tls.options["example.com/cipher"]'],
  );
});

test('ListenerSet (v1) is read and checked like a Gateway\'s listeners; a Gateway\'s allowedListeners Selector needs a selector', () => {
  const r = loadDocuments(
    `apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: ls, namespace: team }
spec:
  parentRef: { name: shop, namespace: default }
  listeners:
  - { name: a, port: 8081, protocol: HTTP }
  - { name: a, port: 8082, protocol: TCP, hostname: x.example.com }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: shop }
spec: { gatewayClassName: istio, allowedListeners: { namespaces: { from: Selector } }, listeners: [{ name: http, port: 80, protocol: HTTP }] }
`,
    'ls.yaml',
  );
  assert.deepEqual(
    r.diagnostics.map((d) => [d.severity, d.resource, d.path]),
    [
      ['Error', 'ListenerSet team/ls', 'spec.listeners[1].name'],
      ['Error', 'ListenerSet team/ls', 'spec.listeners[1].hostname'],
      ['Error', 'Gateway.gateway.networking.k8s.io default/shop', 'spec.allowedListeners.namespaces'],
    ],
  );
  const x = loadDocuments('apiVersion: gateway.networking.x-k8s.io/v1alpha1\nkind: XListenerSet\nmetadata: { name: ls }\nspec: { parentRef: { name: shop }, listeners: [] }\n', 'x.yaml');
  assert.deepEqual([x.resources.length, x.diagnostics[0]?.severity, x.diagnostics[0]?.hint], [0, 'Warning', 'write it as apiVersion gateway.networking.k8s.io/v1, kind ListenerSet (Gateway API v1.5), the ListenerSet current istiod reads']);
  const wrongField = loadDocuments('apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: { name: ls }\nspec: { parentRef: { name: shop }, listeners: [{ name: a, port: 80, protocol: HTTP, bogus: 1 }] }\n', 'f.yaml');
  assert.deepEqual(wrongField.diagnostics.map((d) => [d.severity, d.path]), [['Error', 'spec.listeners[0].bogus']]);
});
