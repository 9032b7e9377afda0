// HCM http_protocol_options.accept_http_10 and default_host_for_http_10, as Envoy: without
// accept_http_10 an HTTP/1.0 request is answered 426 Upgrade Required (DPE) and the connection
// closes; with it the request is proxied, and one without Host gets default_host_for_http_10.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

/** Sends `raw` and returns everything the proxy wrote until it closed the connection. */
function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(raw));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

test('HTTP/1.0 is refused with 426 unless accept_http_10; default_host_for_http_10 fills a missing Host', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  const routes = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }], ['example.com']);
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    listeners: [httpListener('strict', routes), httpListener('http10', routes, { http_protocol_options: { accept_http_10: true, default_host_for_http_10: 'example.com' } })],
  });
  const refused = await exchange(h.port('strict'), 'GET /a HTTP/1.0\r\nHost: example.com\r\n\r\n');
  assert.match(refused, /^HTTP\/1\.[01] 426 /);
  assert.ok(refused.endsWith('Upgrade Required'), refused);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'DPE');
  assert.equal(up.requests.length, 0);

  const served = await exchange(h.port('http10'), 'GET /b HTTP/1.0\r\n\r\n');
  assert.match(served, /^HTTP\/1\.[01] 200 /);
  assert.equal(up.requests.length, 1);
  assert.equal(up.requests[0].headers.host, 'example.com');
  // HTTP/1.1 is untouched on the strict listener.
  const v11 = await exchange(h.port('strict'), 'GET /c HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
  assert.match(v11, /^HTTP\/1\.1 200 /);
});
