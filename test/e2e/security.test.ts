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
    const details = bi.mesh.process('details-v1-0')!.ports.inbound!['9080'];
    assert.equal((await request(details, '/details/0')).status, 200, 'PERMISSIVE: plain text is served');
    await bi.apply(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`);
    // Istio guarantees the switch eventually: once every sidecar has its new inbound listener,
    // plain text is refused everywhere and mTLS serves. Requests during the switch are not
    // guaranteed (the mTLS chain's match changes with the mode, so, as in Envoy, connections of
    // the old chains drain), and productpage answers 200 even when a backend call failed: so the
    // page is asserted whole, after every sidecar has switched.
    const sidecars = bi.mesh.status()!.processes.flatMap((p) => Object.values(p.ports.inbound ?? {}).map((port) => [p.name, port] as const));
    assert.ok(sidecars.length >= 6, `sidecar inbound ports: ${JSON.stringify(sidecars)}`);
    for (const [name, port] of sidecars) {
      await eventually(`${name} refuses plain text`, async () => {
        const answered = await request(port, '/', { timeoutMs: 2000 }).then(() => true, () => false);
        return answered ? undefined : true;
      });
    }
    const whole = (b: string) => /Book Details/.test(b) && /Reviews served by/.test(b) && !/Error fetching/.test(b);
    await eventually('the whole page through STRICT mTLS', async () => {
      const p = await bi.page();
      return p.status === 200 && whole(p.body) ? true : undefined;
    });
    for (let i = 0; i < 3; i++) {
      const page = await bi.page();
      assert.equal(page.status, 200);
      assert.match(page.body, /Book Details/);
      assert.match(page.body, /Reviews served by/);
      assert.doesNotMatch(page.body, /Error fetching/);
    }
  });
});
