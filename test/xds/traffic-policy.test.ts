// DestinationRule trafficPolicy.retryBudget → the cluster's circuit breaker retry_budget (Envoy
// limits concurrent retries to a share of active requests), merged like the other policy fields.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { assertEnvoyResource, buildPush, parseYaml, podSidecar } from './fixtures.ts';

test('retryBudget becomes the circuit breaker retry_budget; a subset policy replaces it', () => {
  const client = podSidecar('client-0', 'default', { app: 'client' }, 'client', [], '198.18.0.70');
  const push = buildPush(
    parseYaml(`apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { selector: { app: web }, ports: [{ name: http, port: 80 }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: default }
spec:
  host: web
  trafficPolicy: { retryBudget: { percent: 25, minRetryConcurrency: 5 } }
  subsets:
  - { name: v1, labels: { version: v1 }, trafficPolicy: { retryBudget: { percent: 10 } } }
`),
    [client],
  );
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, client, undefined);
  const budget = (name: string) => {
    const c = clusters.find((x) => x.name === name)!;
    assertEnvoyResource(CLUSTER_TYPE, c);
    return (((c.circuit_breakers as EnvoyJson).thresholds as EnvoyJson[])[0]).retry_budget;
  };
  assert.deepEqual(budget('outbound|80||web.default.svc.cluster.local'), { budget_percent: { value: 25 }, min_retry_concurrency: 5 });
  assert.deepEqual(budget('outbound|80|v1|web.default.svc.cluster.local'), { budget_percent: { value: 10 } });
});
