// The flags `rig up` gives a gateway: router mode in explicit mode with --bind and
// --inbound-port P=N yields RIG_EXPLICIT { bind, inboundPorts } (CONTRACTS §3), and the proxy-args
// builder produces flags the proxy accepts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { addXdsOptions, bootstrapFromOptions, type XdsCliOptions } from '../../src/proxy/bootstrap/flags.ts';
import { gatewayArgs, sidecarArgs } from '../../src/local/proxy-args.ts';
import type { GatewayPlan, ReplicaPlan } from '../../src/local/mesh-plan.ts';

function parse(args: string[]): XdsCliOptions {
  const cmd = addXdsOptions(new Command('proxy').exitOverride().allowUnknownOption(false));
  cmd.option('--admin-port <n>').option('--ready-port <n>').option('--stats-port <n>').option('--ports-file <f>');
  cmd.parse(args, { from: 'user' });
  return cmd.opts<XdsCliOptions>();
}

const common = { xdsAddress: '127.0.0.1:15010', portsFile: '/tmp/p.json' };

test('a gateway binds its Gateway server ports at --bind on the mapped host ports', () => {
  const gw: GatewayPlan = { name: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' }, serviceAccount: 'istio-ingressgateway-service-account', ports: [8080], protocols: { 8080: 'HTTP' } };
  const args = gatewayArgs(gw, '127.0.0.1', { 8080: 18080 }, common);
  const b = bootstrapFromOptions(parse(args.slice(1)));
  const node = b.node as { id: string; metadata: EnvoyJson };
  assert.equal(node.id, 'router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local');
  assert.deepEqual(node.metadata.LABELS, { istio: 'ingressgateway', app: 'istio-ingressgateway' });
  assert.deepEqual(node.metadata.RIG_EXPLICIT, { bind: '127.0.0.1', inboundPorts: { 8080: 18080 }, appPorts: {} });
});

test("a replica's sidecar flags carry its identity, labels and explicit ports", () => {
  const replica = { name: 'reviews-v2-0', workload: 'reviews-v2', namespace: 'default', index: 0, labels: { app: 'reviews', version: 'v2' }, serviceAccount: 'bookinfo-reviews', spec: { command: ['node'], ports: [{ name: 'http', port: 9080 }] }, cwd: '/', fingerprint: '', replicas: 1, upstreams: ['ratings:9080'], proxyMetadata: {} } as ReplicaPlan;
  const args = sidecarArgs(replica, { inbound: { 9080: 20001 }, app: { 9080: 20002 }, outbound: 20003, upstream: { 'ratings:9080': 20004 } }, common);
  const node = bootstrapFromOptions(parse(args.slice(1))).node as { metadata: EnvoyJson };
  assert.equal(node.metadata.SERVICE_ACCOUNT, 'bookinfo-reviews');
  assert.equal(node.metadata.WORKLOAD_NAME, 'reviews-v2');
  assert.deepEqual(node.metadata.RIG_WORKLOAD_PORTS, [{ port: 9080, name: 'http' }]);
  assert.deepEqual(node.metadata.RIG_EXPLICIT, { bind: '127.0.0.1', outboundPort: 20003, inboundPorts: { 9080: 20001 }, appPorts: { 9080: 20002 }, upstreamPorts: { 'ratings:9080': 20004 } });
});
