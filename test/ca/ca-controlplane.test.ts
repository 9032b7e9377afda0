// The CA attached to a real control plane: CreateCertificate answers on the TLS port only, and the
// proxy's xDS client gets its config over the same TLS port from flags.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import { CLUSTER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { addXdsOptions, bootstrapFromOptions, identityFromOptions, type XdsCliOptions } from '../../src/proxy/bootstrap/flags.ts';
import { CaClient, createKeyAndCsr, IdentityManager } from '../../src/proxy/identity/index.ts';
import { XdsClient } from '../../src/proxy/xds-client/index.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';

test('rig controlplane + CA: certificates on the TLS port only; a flag-built proxy gets config and identity over TLS', async (t) => {
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-ca-' });
  const { cp, caPort: tlsPort, rootFile } = mesh;
  const tokenFile = await mesh.tokenFile('default', 'reviews');

  // Plaintext 15010 never signs (the token would travel in clear).
  const { csrPem } = await createKeyAndCsr('spiffe://cluster.local/ns/default/sa/reviews');
  const plain = new grpc.Client(`127.0.0.1:${cp.ports.xds}`, grpc.credentials.createInsecure());
  t.after(() => plain.close());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${fs.readFileSync(tokenFile, 'utf8')}`);
  md.set('x-rig-ca-transport', 'forged');
  const { certificateServiceDefinition } = await import('../../src/ca/ca-proto.ts');
  const def = certificateServiceDefinition().CreateCertificate!;
  const err = await new Promise<grpc.ServiceError>((resolve) =>
    plain.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, { csr: csrPem, validity_duration: 0 }, md, (e) => resolve(e!)),
  );
  assert.equal(err.code, grpc.status.UNAUTHENTICATED);
  assert.match(err.details, /only over TLS/);
  // Over TLS it signs.
  const tls = new CaClient({ address: `127.0.0.1:${tlsPort}`, rootPem: fs.readFileSync(rootFile), tokenFile });
  t.after(() => tls.close());
  assert.equal((await tls.createCertificate(csrPem, 0, {})).length, 2);

  // A proxy built from flags: ADS over TLS on the same port, identity from the same CA.
  const cmd = addXdsOptions(new Command('proxy'));
  cmd.parse(['--xds-address', `127.0.0.1:${tlsPort}`, '--xds-tls', '--ca-root-file', rootFile, '--ca-address', `127.0.0.1:${tlsPort}`, '--token-file', tokenFile,
    '--workload-name', 'reviews-v1', '--service-account', 'reviews', '--workload-port', '9080/http', '--inbound-port', '9080=15080'], { from: 'user' });
  const opts = cmd.opts<XdsCliOptions>();
  const applied = new Map<string, number>();
  const sink = { apply: (typeUrl: string, r: ReadonlyMap<string, EnvoyJson>) => (applied.set(typeUrl, r.size), []) };
  const xds = new XdsClient({ bootstrap: bootstrapFromOptions(opts), sink, tokenFile });
  t.after(() => xds.stop());
  const acked = new Promise<void>((resolve) => xds.on('ack', (typeUrl) => typeUrl === CLUSTER_TYPE && resolve()));
  xds.start();
  await acked;
  assert.ok((applied.get(CLUSTER_TYPE) ?? 0) > 0, 'the control plane sent clusters');
  const im = new IdentityManager({ ...identityFromOptions(opts)!, sink });
  t.after(() => im.stop());
  await im.start();
  assert.equal(im.certificate()!.identity, 'spiffe://cluster.local/ns/default/sa/reviews');
});
