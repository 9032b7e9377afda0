// ADS over TLS (the control plane's :15012 credentials from the CA) with the bootstrap token,
// from a bootstrap built by the `rig proxy` flags.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { CLUSTER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { createCertificateAuthority } from '../../src/ca/index.ts';
import { addXdsOptions, bootstrapFromOptions, type XdsCliOptions } from '../../src/proxy/bootstrap/flags.ts';
import { XdsClient } from '../../src/proxy/xds-client/index.ts';
import { AdsTestServer } from './ads-test-server.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('connects to ADS over TLS trusting --ca-root-file, sends the token and the node from the flags', async (t) => {
  const dir = tempDir(t, 'rig-xds-tls-');
  const ca = await createCertificateAuthority({ stateDir: dir });
  t.after(() => ca.close());
  const rootFile = path.join(dir, 'root-cert.pem');
  fs.writeFileSync(rootFile, ca.trustBundlePem());
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'test-token\n');
  const server = new AdsTestServer();
  const port = await server.start(0, ca.serverCredentials());
  t.after(() => server.stop());

  const cmd = addXdsOptions(new Command('proxy'));
  cmd.parse(['--xds-address', `127.0.0.1:${port}`, '--xds-tls', '--ca-root-file', rootFile, '--workload-name', 'ratings-v1', '--namespace', 'bookinfo', '--labels', 'app=ratings'], { from: 'user' });
  const sink = { sets: [] as string[][], apply: (_t: string, r: ReadonlyMap<string, EnvoyJson>) => (sink.sets.push([...r.keys()]), []) };
  const client = new XdsClient({ bootstrap: bootstrapFromOptions(cmd.opts<XdsCliOptions>()), sink, tokenFile });
  t.after(() => client.stop());
  client.start();
  const first = await server.waitFor((r) => r.type_url === CLUSTER_TYPE);
  assert.equal((first.node as EnvoyJson).id, 'sidecar~127.0.0.1~ratings-v1.bookinfo~bookinfo.svc.cluster.local');
  assert.deepEqual(server.metadata[0]!.get('authorization'), ['Bearer test-token']);
  const nonce = server.push(CLUSTER_TYPE, '1', [{ name: 'c1', type: 'STATIC' }]);
  await server.waitFor((r) => r.response_nonce === nonce);
  assert.deepEqual(sink.sets, [['c1']]);
  assert.match(client.state().server, /\(TLS\)$/);
});
