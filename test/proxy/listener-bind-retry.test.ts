// A listener whose address is in use when it arrives (another process holds the port for a
// moment: `rig up` chose the port by probing it, then something else bound it before the sidecar
// did) binds as soon as the port is free, and the proxy is not ready until then. Without the
// retry the sidecar never listened on that port (its workload's HTTP_PROXY refused for good).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { listenLocal } from '../helpers/listen.ts';
import { until } from '../helpers/wait.ts';
import { addr, configure, httpListener, request, routeConfig, staticCluster, startTestRuntime, startUpstream } from './harness.ts';

const closeServer = (s: net.Server) => new Promise<void>((r) => s.close(() => r()));

test('a listener whose port is taken binds once the holder lets go; not ready until then', async (t) => {
  const up = await startUpstream('app');
  const h = await startTestRuntime(t, [up]);
  const holder = net.createServer();
  const port = await listenLocal(holder);
  t.after(() => holder.listening && closeServer(holder));
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  await configure(h, { clusters: [staticCluster('app', [up.port])], listeners: [{ ...httpListener('http_proxy', route), address: addr(port) }] });

  const l = h.rt.listeners.get('http_proxy')!;
  assert.equal(l.state, 'failed');
  assert.match(l.error ?? '', /already in use/);
  assert.equal(h.rt.state(), 'INITIALIZING', 'a proxy missing a listener is not ready');

  await closeServer(holder);
  await until('the listener bound after the port was freed', () => l.state === 'listening');
  assert.equal(l.boundPort, port);
  assert.equal(h.rt.state(), 'LIVE');
  assert.equal((await request(port)).json().server, 'app');
});

test('a listener removed (or replaced) while waiting for its port stops retrying', async (t) => {
  const h = await startTestRuntime(t);
  const holder = net.createServer();
  const port = await listenLocal(holder);
  t.after(() => holder.listening && closeServer(holder));
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'none' } }]);
  await configure(h, { listeners: [{ ...httpListener('l', route), address: addr(port) }] });
  assert.equal(h.rt.listeners.get('l')!.state, 'failed');

  await configure(h, { listeners: [] });
  await closeServer(holder);
  // Longer than the pending retry (100 ms): a retry left running would take the port back.
  await new Promise((r) => setTimeout(r, 600));
  const again = net.createServer();
  const outcome = await new Promise<string>((r) => {
    again.once('error', () => r('taken by the removed listener'));
    again.listen(port, '127.0.0.1', () => r('free'));
  });
  if (again.listening) await closeServer(again);
  assert.equal(outcome, 'free');
  assert.equal(h.rt.state(), 'LIVE');
});
