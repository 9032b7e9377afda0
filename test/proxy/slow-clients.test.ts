// Slowloris and slow bodies: the HTTP/1 connection manager enforces request_headers_timeout and
// request_timeout even though its node http.Server never listens on a socket itself.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { addr, configure, httpListener, routeConfig, startTestRuntime, startUpstream } from './harness.ts';

function trickle(port: number, chunks: string[], everyMs: number): Promise<{ response: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect(port, '127.0.0.1');
    let response = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < chunks.length && !s.destroyed) s.write(chunks[i++]);
    }, everyMs);
    s.on('data', (d) => (response += d.toString()));
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      resolve({ response, closedAfterMs: Date.now() - started });
    });
  });
}

test('a client trickling its headers gets 408 and a close after request_headers_timeout', { timeout: 30_000 }, async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [{ name: 'c', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: addr(up.port) } }] }] } }],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' } }])],
    listeners: [httpListener('l', 'r', { request_headers_timeout: '1s' })],
  });
  // One header line every 300 ms, never finishing: without the timeout this would go on for 30 s.
  const chunks = ['GET / HTTP/1.1\r\n', 'Host: x\r\n', ...Array.from({ length: 100 }, (_, i) => `x-slow-${i}: y\r\n`)];
  const r = await trickle(h.port('l'), chunks, 300);
  assert.match(r.response, /^HTTP\/1.1 408/);
  assert.ok(r.closedAfterMs < 10_000, `closed after ${r.closedAfterMs} ms`);
});
