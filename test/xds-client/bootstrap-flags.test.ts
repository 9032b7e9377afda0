// `rig proxy` flags → Envoy v3 bootstrap (node id, CONTRACTS §3 metadata, ADS, xds-grpc cluster).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { checkMessage, type EnvoyJson } from '../../src/envoy/index.ts';
import { addXdsOptions, bootstrapFromOptions, identityFromOptions, type XdsCliOptions } from '../../src/proxy/bootstrap/flags.ts';
import { xdsServerTarget } from '../../src/proxy/xds-client/index.ts';
import { ISTIO_VERSION } from '../../src/core/version.ts';

function parse(args: string[]): XdsCliOptions {
  const cmd = addXdsOptions(new Command('proxy').exitOverride());
  cmd.parse(args, { from: 'user' });
  return cmd.opts<XdsCliOptions>();
}

test('an explicit-mode sidecar bootstrap carries Istio node metadata and Rigging explicit ports', () => {
  const opts = parse([
    '--xds-address', '127.0.0.1:15010', '--namespace', 'bookinfo', '--workload-name', 'reviews-v1', '--service-account', 'bookinfo-reviews',
    '--labels', 'app=reviews,version=v1', '--workload-port', '9080/http/http', '--workload-port', '9090',
    '--inbound-port', '9080=15080', '--inbound-port', '9090=15090', '--app-port', '9080=19080', '--outbound-port', '15101',
    '--upstream-port', 'ratings.bookinfo.svc.cluster.local:9080=16080',
  ]);
  const b = bootstrapFromOptions(opts);
  assert.deepEqual(checkMessage('envoy.config.bootstrap.v3.Bootstrap', b), []);
  const node = b.node as EnvoyJson;
  assert.equal(node.id, 'sidecar~127.0.0.1~reviews-v1.bookinfo~bookinfo.svc.cluster.local');
  assert.deepEqual(node.metadata, {
    // As istio-agent reports its release: the Istio release Rigging follows (EnvoyFilter proxyVersion matches it).
    ISTIO_VERSION,
    // As Istio's injector sets it: the mesh ID, else the trust domain (spans' istio.mesh_id, peer metadata).
    MESH_ID: 'cluster.local',
    NAMESPACE: 'bookinfo',
    LABELS: { app: 'reviews', version: 'v1' },
    SERVICE_ACCOUNT: 'bookinfo-reviews',
    INSTANCE_IPS: '127.0.0.1',
    WORKLOAD_NAME: 'reviews-v1',
    CLUSTER_ID: 'Kubernetes',
    INTERCEPTION_MODE: 'NONE',
    RIG_WORKLOAD_PORTS: [{ port: 9080, name: 'http', protocol: 'HTTP' }, { port: 9090 }],
    RIG_EXPLICIT: {
      bind: '127.0.0.1',
      outboundPort: 15101,
      inboundPorts: { 9080: 15080, 9090: 15090 },
      appPorts: { 9080: 19080, 9090: 9090 },
      upstreamPorts: { 'ratings.bookinfo.svc.cluster.local:9080': 16080 },
    },
  });
  const target = xdsServerTarget(b);
  assert.equal(target.target, 'dns:127.0.0.1:15010');
  assert.deepEqual(target.warnings, []);
});

test('router mode and TLS to the control plane', () => {
  const opts = parse(['--xds-address', 'istiod.example:15012', '--xds-tls', '--ca-root-file', '/tmp/root.pem', '--mode', 'router', '--workload-name', 'ingress', '--namespace', 'istio-system', '--instance-ip', '10.0.0.7']);
  const b = bootstrapFromOptions(opts);
  assert.deepEqual(checkMessage('envoy.config.bootstrap.v3.Bootstrap', b), []);
  assert.equal((b.node as EnvoyJson).id, 'router~10.0.0.7~ingress.istio-system~istio-system.svc.cluster.local');
  const meta = (b.node as EnvoyJson).metadata as EnvoyJson;
  assert.equal(meta.RIG_EXPLICIT, undefined);
  const cluster = ((b.static_resources as EnvoyJson).clusters as EnvoyJson[])[0]!;
  assert.equal(cluster.type, 'STRICT_DNS');
  assert.equal(((cluster.transport_socket as EnvoyJson).typed_config as EnvoyJson).sni, 'istiod.istio-system.svc');
  const id = identityFromOptions(opts)!;
  assert.equal(id.caAddress, 'istiod.example:15012');
  assert.equal(id.namespace, 'istio-system');
  assert.equal(identityFromOptions(parse(['--xds-address', '127.0.0.1:15010'])), undefined);
});

test('bad flags are reported together, each naming its flag', () => {
  const opts = parse(['--xds-address', 'nohost', '--mode', 'gateway', '--labels', 'app', '--workload-port', '9080/http/bogus', '--workload-port', '70000', '--inbound-port', '1234=5']);
  assert.throws(
    () => bootstrapFromOptions(opts),
    (err: Error) => {
      for (const s of ['--xds-address: "nohost"', '--mode: "gateway"', '--workload-name is required', '--labels: "app"', 'unknown protocol "bogus"', '"70000" is not a port', '--inbound-port only applies to a sidecar']) {
        assert.ok(err.message.includes(s), `missing "${s}" in:\n${err.message}`);
      }
      return true;
    },
  );
  assert.throws(() => bootstrapFromOptions(parse(['--xds-address', '127.0.0.1:1', '--workload-name', 'w', '--workload-port', '80'])), /needs --inbound-port \(missing for 80\)/);
  assert.throws(() => bootstrapFromOptions(parse(['--xds-address', '127.0.0.1:1', '--workload-name', 'w', '--inbound-port', '1234=5'])), /--inbound-port: "1234=5" is not WORKLOADPORT/);
  assert.throws(
    () => bootstrapFromOptions(parse(['--xds-address', '127.0.0.1:1', '--workload-name', 'w', '--workload-port', '80', '--inbound-port', '80=15001'])),
    /port 15001 is used for both --outbound-port and --inbound-port 80/,
  );
});

test('ISTIO_META_* and ISTIO_METAJSON_* environment variables become node metadata; the flags win', () => {
  const opts = parse(['--xds-address', '127.0.0.1:15010', '--namespace', 'legacy', '--workload-name', 'w', '--outbound-port', '15101']);
  const env = { ISTIO_META_HTTP10: '1', ISTIO_METAJSON_EXTRA: '{"a":[1]}', ISTIO_META_NAMESPACE: 'other', ISTIO_META_: 'x', PATH: '/bin' };
  const meta = (bootstrapFromOptions(opts, env).node as EnvoyJson).metadata as EnvoyJson;
  assert.equal(meta.HTTP10, '1');
  assert.deepEqual(meta.EXTRA, { a: [1] });
  assert.equal(meta.NAMESPACE, 'legacy');
  assert.equal(meta[''], undefined);
  assert.equal(meta.PATH, undefined);
  assert.throws(() => bootstrapFromOptions(opts, { ISTIO_METAJSON_BAD: '{' }), /ISTIO_METAJSON_BAD: not JSON/);
  // MESH_ID: the trust domain unless ISTIO_META_MESH_ID names the mesh (Istio's global.meshID).
  const inDomain = parse(['--xds-address', '127.0.0.1:15010', '--workload-name', 'w', '--trust-domain', 'example.org', '--outbound-port', '15101']);
  assert.equal(((bootstrapFromOptions(inDomain, {}).node as EnvoyJson).metadata as EnvoyJson).MESH_ID, 'example.org');
  assert.equal(((bootstrapFromOptions(inDomain, { ISTIO_META_MESH_ID: 'mesh1' }).node as EnvoyJson).metadata as EnvoyJson).MESH_ID, 'mesh1');
});
