// Http1ProtocolOptions.enable_trailers on both HTTP/1.1 hops, as Envoy's codecs: an HTTP/1.1
// upstream's response trailers are kept only when its cluster enables them, and reach an HTTP/1.1
// client only when the connection manager does; otherwise they are dropped.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, staticCluster } from './harness.ts';
import { listenLocal } from '../helpers/listen.ts';

const HTTP_OPTS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** A raw HTTP/1.1 exchange: the whole response, connection closed by us after it. */
function rawGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

test('trailers cross HTTP/1.1 hops only where enable_trailers is set', async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { trailer: 'x-checksum' });
    res.write('body');
    res.addTrailers({ 'x-checksum': 'abc123' });
    res.end();
  });
  const port = await listenLocal(server, t);
  const h = await startTestRuntime(t);
  const trailersOn = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTS, explicit_http_config: { http_protocol_options: { enable_trailers: true } } } } };
  const routes = routeConfig('r', [{ match: { prefix: '/on' }, route: { cluster: 'on' } }, { match: { prefix: '/' }, route: { cluster: 'off' } }]);
  await configure(h, {
    clusters: [staticCluster('on', [port], trailersOn), staticCluster('off', [port])],
    listeners: [httpListener('plain', routes), httpListener('trailers', routes, { http_protocol_options: { enable_trailers: true } })],
  });
  assert.match(await rawGet(h.port('trailers'), '/on'), /\r\n0\r\nx-checksum: abc123\r\n\r\n$/, 'enabled on both hops');
  assert.match(await rawGet(h.port('trailers'), '/off'), /\r\n0\r\n\r\n$/, 'the upstream cluster drops them');
  assert.match(await rawGet(h.port('plain'), '/on'), /\r\n0\r\n\r\n$/, 'the connection manager drops them');
});
