// requestThroughCluster and the caller's AbortSignal: a long-lived one (a listener version's init
// signal, shared by its fetches and their retries) keeps no listener of a request that settled, and
// aborting it still cancels a request under way, upstream included. Real upstream, in-process proxy.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { requestThroughCluster, type ClusterRequest } from '../../src/proxy/upstream/cluster-request.ts';
import { CLUSTER_TYPE, staticCluster, startTestRuntime } from './harness.ts';
import { until } from '../helpers/wait.ts';

test('sequential requests with one long-lived signal leave no listener on it; aborting it cancels the request under way', async (t) => {
  let hung: http.IncomingMessage | undefined;
  let hungClosed = false;
  const upstream = http.createServer((req, res) => {
    if (req.url === '/hang') {
      hung = req;
      res.on('close', () => (hungClosed = true));
      return; // never answered
    }
    res.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  const h = await startTestRuntime(t, [{ close: () => new Promise<void>((r) => (upstream.closeAllConnections(), upstream.close(() => r()))) }]);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('up', [port])]), []);

  const init = new AbortController();
  const req = (path: string, timeoutMs = 10_000): ClusterRequest => ({ cluster: 'up', method: 'GET', path, headers: { host: 'up' }, timeoutMs, signal: init.signal });
  const listeners = () => getEventListeners(init.signal, 'abort').length;

  for (let i = 0; i < 30; i++) {
    const res = await requestThroughCluster(h.rt.ctx.clusters, req('/'));
    assert.equal(res.body.toString(), 'ok');
  }
  assert.equal(listeners(), 0, 'answered requests leave no listener');
  // Failed ones neither: an unknown cluster, and a request given up at its timeout.
  await assert.rejects(requestThroughCluster(h.rt.ctx.clusters, { ...req('/'), cluster: 'nope' }), /cluster nope is not configured/);
  await assert.rejects(requestThroughCluster(h.rt.ctx.clusters, req('/hang', 50)), /no response from cluster up within 50 ms/);
  assert.equal(listeners(), 0, 'failed requests leave no listener');
  await until('the timed-out request closed upstream', () => hungClosed);

  hung = undefined;
  hungClosed = false;
  const underway = requestThroughCluster(h.rt.ctx.clusters, req('/hang'));
  await until('the request reached the upstream', () => hung !== undefined);
  assert.equal(listeners(), 1, 'the request under way listens');
  init.abort();
  await assert.rejects(underway, /request cancelled/);
  await until('the cancelled request closed upstream', () => hungClosed);
  assert.equal(listeners(), 0);
  await assert.rejects(requestThroughCluster(h.rt.ctx.clusters, req('/')), /request cancelled/, 'an aborted signal cancels a new request at once');
});
