// Retry rules the other tests do not cover: retriable-headers (response headers decide), and a
// streamed request body (no content-length, so not buffered) is never replayed: the first answer
// stands, while the same request with a small buffered body is retried.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startRuntime, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

test('retriable-headers retries on a matching response header only; buffered and streamed (chunked) bodies are replayed', async (t) => {
  let calls = 0;
  // Every first attempt fails (the upstream alternates), so a retry is visible as a 200.
  const up = await startUpstream('up', (req, res, body) => {
    if (calls++ % 2 === 0) {
      res.writeHead(500, req.url === '/hdr' ? { 'x-retry-me': 'yes' } : {});
      res.end('first');
    } else res.end(`second ${body.length}`);
    return true;
  });
  const h = await startTestRuntime(t, [up]);
  const policy = (retry_on: string) => ({ retry_on, num_retries: 1, retry_back_off: { base_interval: '0.001s' }, retriable_headers: [{ name: 'x-retry-me', present_match: true }] });
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    listeners: [
      httpListener(
        'l',
        routeConfig('r', [
          { match: { prefix: '/hdr' }, route: { cluster: 'up', retry_policy: policy('retriable-headers') } },
          { match: { prefix: '/plain' }, route: { cluster: 'up', retry_policy: policy('retriable-headers') } },
          { match: { prefix: '/body' }, route: { cluster: 'up', retry_policy: policy('5xx') } },
        ]),
      ),
    ],
  });
  const port = h.port('l');
  calls = 0;
  assert.equal((await request(port, { path: '/hdr' })).body, 'second 0');
  calls = 0;
  const plain = await request(port, { path: '/plain' });
  assert.equal(plain.status, 500, 'no matching header: no retry');

  calls = 0;
  const buffered = await request(port, { path: '/body', method: 'POST', body: 'abc' });
  assert.equal(buffered.body, 'second 3');

  calls = 0;
  const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const q = http.request({ host: '127.0.0.1', port, path: '/body', method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    q.on('error', reject);
    q.write('abc');
    q.end();
  });
  // As Envoy: the streamed body is kept (within the buffer limit) and replayed (retry-body.ts).
  assert.deepEqual(streamed, { status: 200, body: 'second 3' });
  assert.equal(calls, 2);
});

test('per_try_idle_timeout is warned as unsupported, not silently ignored', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const errs = h.apply('type.googleapis.com/envoy.config.route.v3.RouteConfiguration', [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_on: '5xx', per_try_idle_timeout: '1s' } } }])]);
  assert.deepEqual(errs, []);
  const warnings = [...h.rt.warnings.values()].flat();
  assert.ok(warnings.some((w) => /retry_policy\.per_try_idle_timeout.*not supported/.test(w)), warnings.join('\n'));
});
