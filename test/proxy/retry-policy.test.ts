// Retry rules the other tests do not cover: retriable-headers (response headers decide), and a
// streamed request body (no content-length, so not buffered) is never replayed: the first answer
// stands, while the same request with a small buffered body is retried.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

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

test('per_try_idle_timeout: a silent attempt is retried; a response that stalls mid-body resets the stream; steady progress is not cut', async (t) => {
  let silent = 0;
  const held: http.ServerResponse[] = [];
  const up = await startUpstream('up', (req, res) => {
    if (req.url === '/silent' && silent++ === 0) {
      held.push(res); // the first attempt never answers: idle, then retried
      return true;
    }
    if (req.url === '/stall') {
      res.writeHead(200);
      res.write('part');
      held.push(res); // headers and a chunk, then nothing
      return true;
    }
    if (req.url === '/slow') {
      // Answers within ~600 ms in 100 ms steps: never idle for the 1 s limit.
      res.writeHead(200);
      let n = 0;
      const tick = setInterval(() => {
        res.write('.');
        if (++n === 6) {
          clearInterval(tick);
          res.end();
        }
      }, 100);
      return true;
    }
    res.end('answered');
    return true;
  });
  t.after(() => held.forEach((r) => r.destroy()));
  const h = await startTestRuntime(t, [up]);
  const retry = { retry_on: '5xx,reset', num_retries: 1, per_try_idle_timeout: '1s', retry_back_off: { base_interval: '0.001s' } };
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up', retry_policy: retry } }]))] });
  const r = await request(h.port('l'), { path: '/silent' });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'answered');
  assert.equal(up.requests.filter((q) => q.url === '/silent').length, 2, 'retried after the idle attempt');
  await assert.rejects(request(h.port('l'), { path: '/stall' }), 'a response idle mid-body resets the downstream stream');
  const slow = await request(h.port('l'), { path: '/slow' });
  assert.equal(slow.body, '......', 'progress every 100 ms keeps a 1 s idle timer from firing');
  const stat = (name: string) => h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
  assert.equal(stat('cluster.up.upstream_rq_per_try_idle_timeout'), 2);
  assert.equal(stat('cluster.up.upstream_rq_per_try_timeout'), 0);
});
