import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NodeError, parseNode } from './proxy.ts';

test('Istio node id and metadata, plus Rigging’s explicit-mode keys', () => {
  const p = parseNode({
    id: 'sidecar~127.0.0.1~reviews-v1-0.default~default.svc.cluster.local',
    metadata: {
      NAMESPACE: 'default',
      LABELS: { app: 'reviews', version: 'v1' },
      SERVICE_ACCOUNT: 'bookinfo-reviews',
      INSTANCE_IPS: '127.0.0.1,::1',
      WORKLOAD_NAME: 'reviews-v1',
      INTERCEPTION_MODE: 'NONE',
      RIG_WORKLOAD_PORTS: JSON.stringify([{ port: 9080, name: 'http' }]),
      RIG_EXPLICIT: { bind: '127.0.0.1', outboundPort: 20000, inboundPorts: { '9080': 20001 }, appPorts: { '9080': '20002' } },
    },
  });
  assert.equal(p.type, 'sidecar');
  assert.equal(p.name, 'reviews-v1-0.default');
  assert.deepEqual(p.ipAddresses, ['127.0.0.1', '::1']);
  assert.equal(p.clusterId, 'Kubernetes');
  assert.deepEqual(p.workloadPorts, [{ port: 9080, name: 'http', protocol: undefined }]);
  assert.deepEqual(p.explicit, { bind: '127.0.0.1', outboundPort: 20000, inboundPorts: { '9080': 20001 }, appPorts: { '9080': 20002 }, upstreamPorts: {} });
});

test('routers, proxyless clients and REDIRECT defaults', () => {
  const gw = parseNode({ id: 'router~10.0.0.2~istio-ingressgateway-5d8.istio-system~istio-system.svc.cluster.local', metadata: { LABELS: { istio: 'ingressgateway' } } });
  assert.equal(gw.type, 'router');
  assert.equal(gw.namespace, 'istio-system');
  assert.equal(gw.interceptionMode, 'REDIRECT');
  const grpc = parseNode({ id: 'client-1', metadata: { NAMESPACE: 'apps', GENERATOR: 'grpc' } });
  assert.equal(grpc.generator, 'grpc');
  assert.equal(grpc.namespace, 'apps');
});

test('bad nodes are refused with the offending key', () => {
  assert.throws(() => parseNode(undefined), NodeError);
  assert.throws(() => parseNode({ id: '' }), /node\.id is missing/);
  assert.throws(() => parseNode({ id: 'x~1~a.b~c' }), /type must be sidecar or router/);
  assert.throws(() => parseNode({ id: 'plain' }), /metadata has no NAMESPACE/);
  assert.throws(() => parseNode({ id: 'p', metadata: { NAMESPACE: 'a', RIG_EXPLICIT: { inboundPorts: { '80': 70000 } } } }), /RIG_EXPLICIT\.inboundPorts\.80 must be a port number/);
  assert.throws(() => parseNode({ id: 'p', metadata: { NAMESPACE: 'a', INTERCEPTION_MODE: 'REDIRECT', RIG_EXPLICIT: {} } }), /requires INTERCEPTION_MODE NONE/);
  assert.throws(() => parseNode({ id: 'p', metadata: { NAMESPACE: 'a', RIG_WORKLOAD_PORTS: [{ port: 'http' }] } }), /RIG_WORKLOAD_PORTS\[0\]\.port/);
  assert.throws(() => parseNode({ id: 'p', metadata: { NAMESPACE: 7 } }), /NAMESPACE must be a string/);
});
