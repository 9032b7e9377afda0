// Route idle_timeout overrides the HCM stream_idle_timeout (Envoy): shorter on one route, disabled
// (0s) on another; WebSocket tunnels follow the same timeout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { configure, httpListener, request, routeConfig, startRuntime, startUpstream, staticCluster } from './harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

test('route idle_timeout: overrides stream_idle_timeout per route, 0s disables it, tunnels too', async (t) => {
  const up = await startUpstream('up', (req, res) => {
    if (req.url === '/silent') return true;
    if (req.url === '/late') {
      setTimeout(() => res.end('late'), 600);
      return true;
    }
  });
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    wss.close();
    await up.close();
  });
  const routes = routeConfig('r', [
    { match: { prefix: '/silent' }, route: { cluster: 'up', idle_timeout: '0.2s' } },
    { match: { prefix: '/late' }, route: { cluster: 'up', idle_timeout: '0s' } },
    { match: { prefix: '/ws' }, route: { cluster: 'ws', idle_timeout: '0.3s' } },
  ]);
  await configure(h, {
    clusters: [staticCluster('up', [up.port]), staticCluster('ws', [(wss.address() as AddressInfo).port])],
    listeners: [httpListener('l', routes, { stream_idle_timeout: '0.3s', upgrade_configs: [{ upgrade_type: 'websocket' }] })],
  });
  const port = h.port('l');
  const silent = await request(port, { path: '/silent' });
  assert.equal(silent.status, 408);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'SI');
  // Longer than the HCM's 0.3 s, but the route disabled the idle timeout.
  const late = await request(port, { path: '/late' });
  assert.equal(late.status, 200);
  assert.equal(late.body, 'late');
  // An idle WebSocket is closed after the route's idle timeout.
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  t.after(() => ws.terminate());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await new Promise((resolve) => ws.once('close', resolve));
});
