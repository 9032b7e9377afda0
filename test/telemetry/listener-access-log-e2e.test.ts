// The control plane's listener access log on real sidecars: with mesh accessLogFile and STRICT
// mTLS, a plaintext TCP connection to a sidecar's inbound port matches no filter chain and shows as
// Istio's NR line ("- - -" 0 NR filter_chain_not_found, the downstream addresses) in that
// sidecar's access log; an mTLS request through the same port is logged by its connection manager
// only, never as NR.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { startMesh, SERVICES_YAML, viaProxy } from './mesh.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

const STRICT = `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: strict, namespace: default }
spec: { mtls: { mode: STRICT } }
`;

function linesOf(file: string, pattern: RegExp, n: number): Promise<string[]> {
  return waitFor(`${n} line(s) matching ${pattern} in ${path.basename(file)}`, () => {
    const all = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => pattern.test(l)) : [];
    return all.length >= n ? all : undefined;
  });
}

/** A plaintext TCP connection sending `bytes`; resolves with the client's port once the sidecar closed it. */
function plaintext(port: number, bytes: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      const local = s.localPort!;
      s.on('error', () => undefined);
      s.once('close', () => resolve(local));
      s.end(bytes);
      s.resume();
    });
    s.once('error', reject);
  });
}

test('a plaintext connection to a STRICT sidecar is an NR filter_chain_not_found line in its access log; mTLS requests are not', async (t) => {
  const dir = tempDir(t, 'rig-listener-log-');
  const file = path.join(dir, 'access.log');
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage', 'reviews']) + STRICT,
    mesh: { accessLogFile: file },
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage' }, sa: 'bookinfo-productpage' },
      { name: 'reviews-v1', labels: { app: 'reviews' }, sa: 'bookinfo-reviews' },
    ],
  });
  t.after(() => mesh.close());
  const reviews = mesh.sidecars['reviews-v1'];

  assert.equal((await viaProxy(mesh.sidecars['productpage-v1'].outbound, 'http://reviews:9080/ok')).status, 200);
  // Both sidecars log the request (outbound, inbound) through their connection managers.
  await linesOf(file, /"GET \/ok HTTP\/1\.1" 200 /, 2);

  const client = await plaintext(reviews.inbound, 'GET / HTTP/1.1\r\nhost: reviews\r\n\r\n');
  const [nr] = await linesOf(file, / NR /, 1);
  assert.match(nr, new RegExp(`^\\[\\S+\\] "- - -" 0 NR filter_chain_not_found - "-" 0 0 \\d+ - "-" "-" "-" "-" "-" - - 127\\.0\\.0\\.1:${reviews.inbound} 127\\.0\\.0\\.1:${client} - -$`));

  // A second request after it: still one NR line, the one of the plaintext connection.
  assert.equal((await viaProxy(mesh.sidecars['productpage-v1'].outbound, 'http://reviews:9080/again')).status, 200);
  await linesOf(file, /"GET \/again HTTP\/1\.1" 200 /, 2);
  assert.equal(fs.readFileSync(file, 'utf8').split('\n').filter((l) => / NR /.test(l)).length, 1);
});
