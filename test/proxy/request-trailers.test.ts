// A chunked HTTP/1.1 request's trailers, as Envoy's codecs carry them: kept only with the connection
// manager's http_protocol_options.enable_trailers, then sent to an HTTP/2 upstream always and to an
// HTTP/1.1 one (chunked) only when its cluster enables them; a retried request and a mirror get
// them too.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, staticCluster } from './harness.ts';
import { listenLocal } from '../helpers/listen.ts';

const OPTS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const H2 = { typed_extension_protocol_options: { [OPTS]: { '@type': `type.googleapis.com/${OPTS}`, explicit_http_config: { http2_protocol_options: {} } } } };
const H1_TRAILERS = { typed_extension_protocol_options: { [OPTS]: { '@type': `type.googleapis.com/${OPTS}`, explicit_http_config: { http_protocol_options: { enable_trailers: true } } } } };

interface Seen {
  path: string;
  body: string;
  trailers: Record<string, unknown>;
}

/** POSTs a chunked body with a trailer; resolves with the response status. */
function chunkedPost(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`POST ${path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nbody\r\n0\r\nx-checksum: abc123\r\n\r\n`));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

test('request trailers: HCM enable_trailers, then HTTP/2 upstreams always, HTTP/1.1 upstreams with the cluster enable_trailers; retries and mirrors', async (t) => {
  const seen: Record<string, Seen[]> = { h2: [], h1: [] };
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    let body = '';
    let trailers: Record<string, unknown> = {};
    stream.on('data', (c: Buffer) => (body += c));
    stream.on('trailers', (tr) => (trailers = Object.fromEntries(Object.entries(tr))));
    stream.on('end', () => {
      seen.h2.push({ path: String(headers[':path']), body, trailers });
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
  });
  let failNext = false;
  const h1 = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen.h1.push({ path: req.url ?? '', body, trailers: { ...req.trailers } });
      res.writeHead(failNext ? 503 : 200);
      failNext = false;
      res.end('ok');
    });
  });
  const h2Port = await listenLocal(h2 as unknown as net.Server, t);
  const h1Port = await listenLocal(h1, t);
  const h = await startTestRuntime(t);
  const routes = routeConfig('r', [
    { match: { prefix: '/h2' }, route: { cluster: 'h2' } },
    { match: { prefix: '/h1on/retry' }, route: { cluster: 'h1on', retry_policy: { retry_on: '5xx', num_retries: 1 } } },
    { match: { prefix: '/h1on/mirror' }, route: { cluster: 'h1on', request_mirror_policies: [{ cluster: 'h2' }] } },
    { match: { prefix: '/h1on' }, route: { cluster: 'h1on' } },
    { match: { prefix: '/h1off' }, route: { cluster: 'h1off' } },
  ]);
  await configure(h, {
    clusters: [staticCluster('h2', [h2Port], H2), staticCluster('h1on', [h1Port], H1_TRAILERS), staticCluster('h1off', [h1Port])],
    listeners: [httpListener('on', routes, { http_protocol_options: { enable_trailers: true } }), httpListener('off', routes)],
  });
  const trailersOf = async (listener: string, path: string, side: 'h1' | 'h2'): Promise<Record<string, unknown>> => {
    assert.equal(await chunkedPost(h.port(listener), path), 200, `${listener} ${path}`);
    const s = seen[side].findLast((x) => x.path === path)!;
    assert.equal(s.body, 'body', `${listener} ${path}: body`);
    return s.trailers;
  };

  assert.deepEqual(await trailersOf('on', '/h2', 'h2'), { 'x-checksum': 'abc123' }, 'HTTP/2 upstream');
  assert.deepEqual(await trailersOf('on', '/h1on', 'h1'), { 'x-checksum': 'abc123' }, 'HTTP/1.1 upstream with enable_trailers');
  assert.deepEqual(await trailersOf('on', '/h1off', 'h1'), {}, 'HTTP/1.1 upstream without enable_trailers drops them');
  assert.deepEqual(await trailersOf('off', '/h2', 'h2'), {}, 'the connection manager without enable_trailers drops them');
  assert.deepEqual(await trailersOf('off', '/h1on', 'h1'), {}, 'the connection manager without enable_trailers drops them');

  // A retry replays the body, trailers included.
  failNext = true;
  const before = seen.h1.length;
  assert.equal(await chunkedPost(h.port('on'), '/h1on/retry'), 200);
  assert.deepEqual(
    seen.h1.slice(before).map((s) => [s.body, s.trailers]),
    [
      ['body', { 'x-checksum': 'abc123' }],
      ['body', { 'x-checksum': 'abc123' }],
    ],
  );

  // A mirror's copy of the body ends with them too.
  assert.deepEqual(await trailersOf('on', '/h1on/mirror', 'h1'), { 'x-checksum': 'abc123' });
  while (!seen.h2.some((s) => s.path === '/h1on/mirror')) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(seen.h2.find((s) => s.path === '/h1on/mirror')!.trailers, { 'x-checksum': 'abc123' }, 'the mirror (HTTP/2)');
});
