// Istio's security tasks on Bookinfo through the real processes of `rig demo`: mutual TLS
// STRICT between the sidecars (certificates from the control plane's CA).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Bookinfo, eventually, request } from './bookinfo-mesh.ts';

describe('Istio security tasks on Bookinfo', () => {
  let bi: Bookinfo;
  before(async () => {
    bi = await Bookinfo.start();
  });
  after(async () => {
    await bi?.stop();
  });

  it('mutual TLS STRICT: the mesh keeps working; plain text to a sidecar is refused', async () => {
    await bi.apply(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`);
    const details = bi.mesh.process('details-v1-0')!.ports.inbound!['9080'];
    await eventually('plain text refused', async () => {
      const r = await request(details, '/details/0', { timeoutMs: 2000 }).catch(() => undefined);
      return r === undefined || r.status >= 400 ? true : undefined;
    });
    // The sidecars' inbound listeners change chains with the mode; a pooled connection closed by
    // that change can fail one request (503 UC) — a known gap: the mesh must settle, then serve.
    await eventually('the page through STRICT mTLS', async () => ((await bi.page()).status === 200 ? true : undefined));
    const page = await bi.page();
    assert.equal(page.status, 200);
    assert.match(page.body, /Book Details/);
    assert.match(page.body, /Reviews served by/);
  });
});
