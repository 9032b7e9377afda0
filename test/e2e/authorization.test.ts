// Istio's "Authorization for HTTP traffic" task on Bookinfo through the real processes of
// `rig demo`, with mutual TLS STRICT, applying examples/bookinfo/tasks/authz-http/ step by step:
// allow-nothing, then GET on productpage from anyone, then details and reviews from productpage,
// then ratings from reviews. Each step is checked on the page, as the task does in a browser.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import { Bookinfo, eventually, request } from './bookinfo-mesh.ts';

const TASK = path.join(REPO_ROOT, 'examples/bookinfo/tasks/authz-http');
const step = (file: string): string => readFileSync(path.join(TASK, file), 'utf8');

describe('Istio task: authorization for HTTP traffic (mTLS STRICT)', () => {
  let bi: Bookinfo;
  before(async () => {
    bi = await Bookinfo.start();
    await bi.apply(step('00-peer-authentication-strict.yaml'));
  });
  after(async () => {
    await bi?.stop();
  });

  /** Waits until the page satisfies `pred` (config reaches every sidecar within a second or so). */
  const pageWhere = (what: string, pred: (status: number, body: string) => boolean) =>
    eventually(what, async () => {
      const r = await bi.page();
      return pred(r.status, r.body) ? r : undefined;
    });

  it('allow-nothing → 403 "RBAC: access denied"; then each viewer policy opens one hop', async () => {
    await bi.apply(step('01-allow-nothing.yaml'));
    const denied = await pageWhere('productpage denied', (s) => s === 403);
    assert.match(denied.body, /RBAC: access denied/);
    // Every workload denies, not only productpage: details straight through its sidecar too.
    const details = bi.mesh.process('details-v1-0')!.ports.inbound!['9080'];
    const direct = await request(details, '/details/0', { timeoutMs: 2000 }).catch(() => undefined);
    assert.ok(direct === undefined || direct.status >= 400, 'details answered a plain-text request');

    await bi.apply(step('02-productpage-viewer.yaml'));
    const page = await pageWhere('productpage allowed, details and reviews denied', (s, b) => s === 200 && b.includes('Error fetching product reviews'));
    assert.match(page.body, /Error fetching product details/);
    // GET only: a POST (login) on productpage is still denied.
    const login = await request(bi.gatewayPort, '/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=jason&passwd=password' });
    assert.equal(login.status, 403);

    await bi.apply(step('03-details-viewer.yaml'));
    await bi.apply(step('04-reviews-viewer.yaml'));
    const withReviews = await pageWhere('details and reviews allowed', (s, b) => s === 200 && !b.includes('Error fetching') && /reviews-v[23]/.test(b));
    assert.match(withReviews.body, /Book Details/);
    assert.match(withReviews.body, /Ratings service is currently unavailable/);
    assert.doesNotMatch(withReviews.body, /data-stars/);

    await bi.apply(step('05-ratings-viewer.yaml'));
    const withStars = await pageWhere('ratings allowed', (s, b) => s === 200 && b.includes('data-stars'));
    assert.doesNotMatch(withStars.body, /Ratings service is currently unavailable|Error fetching/);
  });
});
