import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDocuments } from '../../src/api/index.ts';
import { gatewayServices } from '../../src/local/gateway-services.ts';

const load = (yaml: string) => loadDocuments(yaml, 'test.yaml').resources;

const EGRESS_GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: istio-egressgateway }
spec:
  selector: { istio: egressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: [edition.cnn.com]
  - port: { number: 443, name: tls, protocol: TLS }
    hosts: [edition.cnn.com]
    tls: { mode: PASSTHROUGH }
`;

describe('gatewayServices', () => {
  it('defines istio-egressgateway.istio-system with the selected Gateway server ports, named by protocol', () => {
    const [svc, ...rest] = gatewayServices(load(EGRESS_GATEWAY));
    assert.equal(rest.length, 0, 'no Gateway selects the ingress gateway');
    assert.equal(svc.kind, 'Service');
    assert.deepEqual(svc.metadata, { name: 'istio-egressgateway', namespace: 'istio-system', labels: { istio: 'egressgateway', app: 'istio-egressgateway' } });
    assert.deepEqual(svc.spec, {
      selector: { istio: 'egressgateway', app: 'istio-egressgateway' },
      ports: [
        { name: 'http-80', port: 80 },
        { name: 'tls-443', port: 443 },
      ],
    });
  });

  it('a Service of the same name the user declares wins', () => {
    const user = `apiVersion: v1
kind: Service
metadata: { name: istio-egressgateway, namespace: istio-system }
spec:
  selector: { istio: egressgateway }
  ports: [{ name: http2, port: 80 }]
`;
    assert.deepEqual(gatewayServices(load(`${EGRESS_GATEWAY}---\n${user}`)), []);
  });

  it("defines <name>-istio beside a Gateway API Gateway of class istio, as Istio's automated deployment does; other classes get none", () => {
    const gw = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: bookinfo-gateway, namespace: bookinfo }
spec:
  gatewayClassName: istio
  listeners:
  - { name: http, port: 80, protocol: HTTP }
  - { name: https, port: 443, protocol: HTTPS, hostname: bookinfo.example.com, tls: { mode: Terminate, certificateRefs: [{ name: bookinfo-cert }] } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: other, namespace: bookinfo }
spec:
  gatewayClassName: some-other-controller
  listeners: [{ name: http, port: 8080, protocol: HTTP }]
`;
    const labels = { 'gateway.networking.k8s.io/gateway-name': 'bookinfo-gateway', 'istio.io/gateway-name': 'bookinfo-gateway', 'service.istio.io/canonical-name': 'bookinfo-gateway-istio' };
    assert.deepEqual(gatewayServices(load(gw)), [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'bookinfo-gateway-istio', namespace: 'bookinfo', labels },
        spec: { selector: labels, ports: [{ name: 'http-80', port: 80 }, { name: 'https-443', port: 443 }] },
      },
    ]);
  });

  it("gives <name>-istio the ports of the ListenerSets its Gateway allows, as istiod's deployment controller does (the first listener on a port naming it)", () => {
    const yaml = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw, namespace: infra }
spec:
  gatewayClassName: istio
  allowedListeners: { namespaces: { from: Same } }
  listeners: [{ name: http, port: 80, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: extra, namespace: infra }
spec:
  parentRef: { name: gw }
  listeners:
  - { name: raw, port: 80, protocol: TCP }
  - { name: team, port: 8081, protocol: HTTP, hostname: team.example.com }
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: { name: outside, namespace: other }
spec:
  parentRef: { name: gw, namespace: infra }
  listeners: [{ name: x, port: 9090, protocol: TCP }]
`;
    const [svc] = gatewayServices(load(yaml));
    assert.deepEqual((svc.spec as { ports: unknown[] }).ports, [
      { name: 'http-80', port: 80 },
      { name: 'http-8081', port: 8081 },
    ]);
  });

  it('defines nothing without Gateways', () => {
    assert.deepEqual(gatewayServices([]), []);
  });
});
