// Istio's "Enabling Rate Limits using Envoy" task (local rate limit) through the real processes of
// `rig demo`: `rig apply` of the task's EnvoyFilter (examples/bookinfo/tasks/local-rate-limit/)
// limits productpage's sidecar to 4 requests a minute: through the ingress gateway the page
// answers 200 until the bucket is empty, then 429 with x-local-rate-limit: true; `rig delete`
// lifts the limit.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import { Bookinfo, eventually, type Response } from './bookinfo-mesh.ts';

const FILTER = path.join(REPO_ROOT, 'examples/bookinfo/tasks/local-rate-limit/filter-local-ratelimit-svc.yaml');

describe('Istio task: local rate limit (EnvoyFilter)', () => {
  let bi: Bookinfo;
  before(async () => {
    bi = await Bookinfo.start();
  });
  after(async () => {
    await bi?.stop();
  });

  it('rig apply: 200 until the 4 tokens are spent, then 429 with x-local-rate-limit; rig delete lifts it', async () => {
    const applied = await bi.mesh.rig(['apply', '-f', FILTER]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /EnvoyFilter istio-system\/filter-local-ratelimit-svc created/);
    const seen: Response[] = [];
    const limited = await eventually('a 429 from productpage once the bucket is empty', async () => {
      const r = await bi.page();
      seen.push(r);
      return r.status === 429 ? r : undefined;
    }, 30_000);
    assert.equal(limited.headers['x-local-rate-limit'], 'true');
    // Every request before the first refusal passed, and at least the bucket's 4 after the filter arrived.
    const passed = seen.slice(0, -1).map((r) => r.status);
    assert.ok(passed.length >= 4 && passed.every((s) => s === 200), `statuses before the 429: ${passed.join(', ')}`);
    assert.equal(seen.at(-2)?.headers['x-local-rate-limit'], undefined);

    const deleted = await bi.mesh.rig(['delete', '-f', FILTER]);
    assert.equal(deleted.code, 0, deleted.stderr);
    await eventually('productpage answers again without the EnvoyFilter', async () => ((await bi.page()).status === 200 ? true : undefined), 30_000);
  });
});
