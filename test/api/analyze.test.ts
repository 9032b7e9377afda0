import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyze, loadDocuments } from '../../src/api/index.ts';

const BASE = `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: reviews}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["bookinfo.example.com"]}]
`;

function run(extra: string) {
  const { resources, diagnostics } = loadDocuments(`${BASE}---\n${extra}`, 'mesh.yaml');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'Error'), [], 'the input itself is valid');
  return analyze(resources).map((d) => `${d.code} ${d.severity} ${d.resource} ${d.path ?? ''}: ${d.message}`);
}

test('a consistent configuration has no messages', () => {
  assert.deepEqual(
    run(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}}]}]
`),
    [],
  );
});

test('IST0101: unknown host, subset and gateway', () => {
  const out = run(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front}
spec:
  hosts: [bookinfo.example.com]
  gateways: [gw, missing-gw]
  http:
  - route:
    - {destination: {host: reviews, subset: v9}, weight: 50}
    - {destination: {host: nowhere}, weight: 50}
`);
  assert.ok(out.some((m) => m.startsWith('IST0101 Error VirtualService default/front spec.gateways[1]: Referenced gateway not found: "missing-gw"')), out.join('\n'));
  assert.ok(out.some((m) => m.includes('spec.http[0].route[0].destination.subset: Referenced host+subset in destinationrule not found: "reviews+v9"')), out.join('\n'));
  assert.ok(out.some((m) => m.includes('spec.http[0].route[1].destination.host: Referenced host not found: "nowhere"')), out.join('\n'));
  assert.equal(out.length, 3, out.join('\n'));
});

test('IST0109: two VirtualServices for one host on the mesh; IST0131: unreachable rules', () => {
  const out = run(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - match: [{headers: {end-user: {exact: jason}}}, {headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews}}]
`);
  assert.ok(out.some((m) => m.startsWith('IST0109 Error VirtualService default/b') && m.includes('define the same host reviews.default.svc.cluster.local')), out.join('\n'));
  assert.ok(out.some((m) => m.startsWith('IST0131 Info VirtualService default/a spec.http[1]')), out.join('\n'));
  assert.ok(out.some((m) => m.startsWith('IST0131 Info VirtualService default/b spec.http[0].match[1]')), out.join('\n'));
});

test('IST0118 port without protocol, IST0112 port required, IST0127 selector without workload', () => {
  const out = run(`apiVersion: v1
kind: Service
metadata: {name: multi}
spec:
  ports: [{name: web, port: 80}, {name: grpc-api, port: 90}, {name: db, port: 5432, appProtocol: tcp}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: multi}
spec:
  hosts: [multi]
  http: [{route: [{destination: {host: multi}}]}]
---
apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v1, labels: {app: reviews, version: v1}}
spec: {command: [node, reviews.ts]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: typo}
spec:
  selector: {matchLabels: {app: reveiws}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: fine}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
`);
  assert.deepEqual(out.filter((m) => m.startsWith('IST0118')).map((m) => m.split(':')[0]), ['IST0118 Info Service default/multi spec.ports[0]']);
  assert.ok(out.some((m) => m.startsWith('IST0112 Error VirtualService default/multi spec.http[0].route[0].destination')), out.join('\n'));
  assert.deepEqual(out.filter((m) => m.startsWith('IST0127')).map((m) => m.split(':')[0]), ['IST0127 Warning AuthorizationPolicy default/typo spec.selector.matchLabels']);
});

test('IST0101 warnings: a mesh VirtualService host and a DestinationRule host that nothing defines', () => {
  const out = run(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ghost}
spec:
  hosts: [ghost]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ghost}
spec:
  host: ghost.other.svc.cluster.local
`);
  assert.deepEqual(out.map((m) => m.split(':')[0]), ['IST0101 Warning VirtualService default/ghost spec.hosts[0]', 'IST0101 Warning DestinationRule default/ghost spec.host']);
});

test('IST0145: two gateways for the same workloads, port and host; positions point at the field', () => {
  const { resources } = loadDocuments(`${BASE}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw2, namespace: other}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls: {mode: SIMPLE, credentialName: cert}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
`, 'gw.yaml');
  const out = analyze(resources);
  assert.deepEqual(out.map((d) => [d.code, d.resource, d.path, d.source?.line, d.source?.column]), [['IST0145', 'Gateway other/gw2', 'spec.servers[1]', 31, 5]]);
  assert.match(out[0].message, /Conflict with gateways default\/gw \(workload selector istio=ingressgateway, port 80/);
});

test('a short host that names a Service of another namespace gets a hint with the full name', () => {
  const { resources } = loadDocuments(`${BASE}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: web}
spec:
  hosts: [bookinfo.example.com]
  gateways: [default/gw]
  http: [{route: [{destination: {host: reviews}}]}]
`, 'x.yaml');
  const [msg] = analyze(resources);
  assert.equal(msg.code, 'IST0101');
  assert.match(msg.hint ?? '', /a Service reviews exists in namespace default \(reviews\.default\.svc\.cluster\.local\)/);
});

test('IST0134: a TCP ServiceEntry port without addresses', () => {
  const { resources } = loadDocuments(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}, {number: 443, name: https, protocol: TLS}]
  resolution: DNS
`, 'se.yaml');
  assert.deepEqual(analyze(resources).map((d) => [d.code, d.severity, d.path]), [['IST0134', 'Warning', 'spec.ports[0]']]);
});

test("IST0162: a Gateway port that no Service of its workloads leads to (the Service's targetPort, else its port); workloads given by a live mesh count", () => {
  const gateway = `apiVersion: v1
kind: Service
metadata: {name: edge, namespace: edge}
spec:
  selector: {app: edge}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: https, port: 443}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: edge-elsewhere}
spec:
  selector: {app: edge}
  ports: [{name: http-alt, port: 9000}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: edge}
spec:
  selector: {app: edge}
  servers:
  - {port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}
  - {port: {number: 80, name: http-80, protocol: HTTP}, hosts: ["*"]}
  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"], tls: {mode: PASSTHROUGH}}
  - {port: {number: 53, name: tcp-dns, protocol: TCP}, hosts: ["*"]}
  - {port: {number: 9000, name: http-9000, protocol: HTTP}, hosts: ["*"]}
`;
  const { resources } = loadDocuments(`${BASE}---\n${gateway}`, 'mesh.yaml');
  const ist0162 = (opts: Parameters<typeof analyze>[1]) => analyze(resources, opts).filter((d) => d.code === 'IST0162').map((d) => `${d.resource} ${d.path}`);
  assert.deepEqual(ist0162({}), [], 'no workload of the gateway is known: nothing to check against');
  assert.deepEqual(ist0162({ workloads: [{ namespace: 'edge', labels: { app: 'edge' } }] }), ['Gateway edge/edge spec.servers[1].port.number', 'Gateway edge/edge spec.servers[3].port.number', 'Gateway edge/edge spec.servers[4].port.number']);
});
