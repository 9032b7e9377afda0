// Istio's "External Authorization" task on Bookinfo through the real processes of `rig demo`: the
// mesh config names the sample authorizer (examples/bookinfo/tasks/ext-authz/) as a gRPC and an
// HTTP extension provider, the authorizer runs as a workload with its own sidecar, and an
// AuthorizationPolicy CUSTOM on productpage sends /productpage requests to it. Other paths are
// never checked; a request with `x-ext-authz: allow` passes, any other is denied by the authorizer.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import { Bookinfo, eventually, request } from './bookinfo-mesh.ts';

const TASK = path.join(REPO_ROOT, 'examples/bookinfo/tasks/ext-authz');
const DENIED = 'denied by ext_authz for not found header `x-ext-authz: allow` in the request';

describe('Istio task: external authorization (AuthorizationPolicy CUSTOM)', () => {
  let bi: Bookinfo;
  before(async () => {
    bi = await Bookinfo.start(['--mesh-config', path.join(TASK, 'mesh-config.yaml')]);
    const res = await bi.mesh.rig(['apply', '-f', path.join(TASK, 'ext-authz.yaml')]);
    assert.equal(res.code, 0, res.stderr);
    await bi.mesh.waitFor((s) => s.processes.some((p) => p.name === 'ext-authz-0' && p.state === 'ready'), 'the ext-authz workload ready', 30_000);
  });
  after(async () => {
    await bi?.stop();
  });

  /** What the authorizer logged: one `[gRPC|HTTP] allowed|denied <method> <host><path>` line per check. */
  const authzLog = (): string => {
    const p = bi.mesh.process('ext-authz-0');
    return p?.logs.app ? readFileSync(path.join(bi.mesh.stateDir, p.logs.app), 'utf8') : '';
  };

  const page = (verdict?: string) => request(bi.gatewayPort, '/productpage', { headers: verdict ? { 'x-ext-authz': verdict } : {} });

  for (const kind of ['grpc', 'http'] as const) {
    it(`${kind} provider: /productpage is checked by the authorizer, other paths are not`, async () => {
      const res = await bi.mesh.rig(['apply', '-f', path.join(TASK, `ext-authz-policy-${kind}.yaml`)]);
      assert.equal(res.code, 0, res.stderr);
      const tag = kind === 'grpc' ? '[gRPC]' : '[HTTP]';
      const before = authzLog().split('\n').length;
      // The authorizer logs the check, so a denial is known to come from this provider (both answer alike).
      const denied = await eventually(`productpage denied by the ${kind} authorizer`, async () => {
        const r = await page('deny');
        const fresh = authzLog().split('\n').slice(before - 1);
        return r.status === 403 && r.body === DENIED && fresh.some((l) => l.startsWith(`${tag} denied GET`)) ? r : undefined;
      }, 20_000);
      assert.equal(denied.headers['x-ext-authz-check-result'], 'denied');
      assert.equal((await page()).status, 403, 'no header: denied');
      const allowed = await page('allow');
      assert.equal(allowed.status, 200);
      assert.match(allowed.body, /The Comedy of Errors/);
      // A path the CUSTOM rule does not select never reaches the authorizer, whatever the header says.
      const api = await request(bi.gatewayPort, '/api/v1/products', { headers: { 'x-ext-authz': 'deny' } });
      assert.equal(api.status, 200);
      assert.doesNotMatch(authzLog(), /\/api\/v1\/products/);
      // The checks went from productpage's sidecar to the authorizer's over mutual TLS (the async
      // client sends no peer metadata headers, so only the certificate names the source, as in Istio).
      const served = (await bi.stats('ext-authz-0')).split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"'));
      const mtls = served.filter((l) => l.includes('source_principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage"') && l.includes('connection_security_policy="mutual_tls"'));
      assert.ok(mtls.some((l) => l.includes(`request_protocol="${kind}"`)), served.join('\n'));
      const stats = await bi.stats('productpage-v1-0');
      const denials = stats.split('\n').filter((l) => !l.startsWith('#') && l.includes('ext_authz') && l.includes('denied')).map((l) => Number(l.split(' ').at(-1)));
      assert.ok(denials.some((n) => n > 0), `the sidecar counted denials: ${denials.join(', ')}`);
    });
  }
});
