// Cluster common_http_protocol_options.max_stream_duration: an upstream request that lasts longer
// is reset; 408 with UMSDR before a response started, a reset downstream stream after. The limit
// is generous (1 s) so that the quick request stays under it on a loaded CI machine.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

test('upstream max_stream_duration: 408 UMSDR before the response, reset after; quick requests unaffected', async (t) => {
  const up = await startUpstream('up', (req, res) => {
    if (req.url === '/slow') return true; // never answers
    if (req.url === '/trickle') {
      res.writeHead(200);
      res.write('start');
      return true; // never ends
    }
  });
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [staticCluster('up', [up.port], { common_http_protocol_options: { max_stream_duration: '1s' } })],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up', timeout: '10s' } }]))],
  });
  const port = h.port('l');
  assert.equal((await request(port, { path: '/fast' })).status, 200);
  const slow = await request(port, { path: '/slow' });
  assert.equal(slow.status, 408);
  assert.equal(slow.body, 'upstream max stream duration reached');
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'UMSDR');
  const cut = await new Promise<string>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/trickle', agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('error', () => resolve('reset'));
      res.on('end', () => resolve(res.complete ? 'complete' : 'reset'));
    });
    req.on('error', () => resolve('reset'));
  });
  assert.equal(cut, 'reset');
  for (let i = 0; i < 500 && h.streams.at(-1)!.path !== '/trickle'; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'UMSDR');
});
