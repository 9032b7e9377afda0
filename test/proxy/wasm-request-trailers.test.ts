// envoy.filters.http.wasm and request trailers, over real sockets: proxy_on_request_trailers sees a
// chunked HTTP/1.1 request's trailers (the connection manager's enable_trailers) and an HTTP/2
// request's, reads, adds and replaces them, pauses on an HTTP call and continues the request from its
// callback (proxy_continue_stream(Request)), and the upstream gets the trailers as the plugin left them.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { trailerUpstreams } from '../helpers/trailer-upstreams.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { requestTrailersPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { configure, httpListener, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const OPTS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const H2 = { typed_extension_protocol_options: { [OPTS]: { '@type': `type.googleapis.com/${OPTS}`, explicit_http_config: { http2_protocol_options: {} } } } };
const H1_TRAILERS = { typed_extension_protocol_options: { [OPTS]: { '@type': `type.googleapis.com/${OPTS}`, explicit_http_config: { http_protocol_options: { enable_trailers: true } } } } };

function chunkedPost(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`POST ${path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nbody\r\n0\r\nx-checksum: abc123\r\n\r\n`));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

function h2Post(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const s = session.request({ ':method': 'POST', ':path': path }, { waitForTrailers: true });
    s.on('wantTrailers', () => s.sendTrailers({ 'x-checksum': 'abc123' }));
    let status = 0;
    s.on('response', (h) => (status = Number(h[':status'])));
    s.resume();
    s.on('end', () => {
      session.close();
      resolve(status);
    });
    s.on('error', reject);
    s.end('body');
  });
}

test('wasm: proxy_on_request_trailers reads, adds and replaces request trailers (HTTP/1.1 chunked, HTTP/2) and pauses them around an HTTP call', async (t) => {
  const ups = await trailerUpstreams(t);
  const authz = await startUpstream('authz');
  const h = await startTestRuntime(t, [authz]);
  const dir = tempDir(t, 'wasm-');
  const file = await writePlugin(dir, 'trailers', requestTrailersPlugin);
  const filter = { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: { name: 'tr', root_id: 'tr', vm_config: { vm_id: 'tr', code: { local: { filename: file } } } } } };
  const routes = routeConfig('r', [
    { match: { prefix: '/h2' }, route: { cluster: 'h2' } },
    { match: { prefix: '/' }, route: { cluster: 'h1' } },
  ]);
  await configure(h, {
    clusters: [staticCluster('h1', [ups.h1], H1_TRAILERS), staticCluster('h2', [ups.h2], H2), staticCluster('authz', [authz.port])],
    listeners: [httpListener('l', routes, { http_filters: [filter, ROUTER], http_protocol_options: { enable_trailers: true } })],
  });
  const port = h.port('l');
  const expected = { 'x-checksum': 'by-wasm', 'x-wasm-checksum': 'abc123', 'x-wasm-called': 'yes' };

  assert.equal(await chunkedPost(port, '/h1'), 200);
  assert.deepEqual(ups.seen.at(-1), { body: 'body', trailers: expected }, 'HTTP/1.1 chunked to HTTP/1.1');
  assert.equal(await chunkedPost(port, '/h2'), 200);
  assert.deepEqual(ups.seen.at(-1), { body: 'body', trailers: expected }, 'HTTP/1.1 chunked to HTTP/2');
  assert.equal(await h2Post(port, '/h2'), 200);
  assert.deepEqual(ups.seen.at(-1), { body: 'body', trailers: expected }, 'HTTP/2 to HTTP/2');
  assert.equal(await h2Post(port, '/h1'), 200);
  assert.deepEqual(ups.seen.at(-1), { body: 'body', trailers: expected }, 'HTTP/2 to HTTP/1.1');
  assert.equal(authz.requests.length, 4, 'one call per request, from its trailers');
});
