// %UPSTREAM_LOCAL_ADDRESS% (in Istio's default access log format) is the local address of the
// connection the proxy opened to the upstream: the address the upstream saw the request come from,
// here over HTTP (the HTTP/1 pool and the HTTP/2 one) and tcp_proxy.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_ACCESS_LOG_TYPE, TCP_PROXY_TYPE } from '../../src/envoy/index.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';
import { addr, configure, httpListener, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const FORMAT = { text_format_source: { inline_string: '%UPSTREAM_LOCAL_ADDRESS%\n' } };

function fileLog(file: string) {
  return [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: file, log_format: FORMAT } }];
}

async function logged(file: string): Promise<string> {
  await until('the access log line', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').endsWith('\n'));
  return fs.readFileSync(file, 'utf8').trim();
}

test('%UPSTREAM_LOCAL_ADDRESS% is the address the upstream saw, over HTTP and tcp_proxy', async (t) => {
  const seenBy = (s: net.Socket) => `${s.remoteAddress}:${s.remotePort}`;
  const app = await startUpstream('app', (req, res) => {
    res.writeHead(200, { 'x-client': seenBy(req.socket) }).end();
    return true;
  });
  const tcpClients: string[] = [];
  const echo = net.createServer((s) => {
    tcpClients.push(seenBy(s));
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.after(() => echo.close());
  const h = await startTestRuntime(t, [app]);
  const dir = tempDir(t, 'rig-upstream-local-');
  const httpLog = path.join(dir, 'http.log');
  const tcpLog = path.join(dir, 'tcp.log');
  const tcpListener = {
    name: 'tcp',
    address: addr(0),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster: 'echo', access_log: fileLog(tcpLog) } }] }],
  };
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('echo', [(echo.address() as net.AddressInfo).port])],
    listeners: [httpListener('l', route, { access_log: fileLog(httpLog) }), tcpListener],
  });

  const reply = await request(h.port('l'), { path: '/' });
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers['x-client']), /^127\.0\.0\.1:\d+$/);
  assert.equal(await logged(httpLog), reply.headers['x-client']);

  const client = net.connect(h.port('tcp'), '127.0.0.1');
  await new Promise<void>((resolve) => client.once('data', () => resolve()).write('ping'));
  client.end();
  await new Promise((r) => client.once('close', r));
  assert.equal(tcpClients.length, 1);
  assert.equal(await logged(tcpLog), tcpClients[0]);
});

test('%UPSTREAM_LOCAL_ADDRESS% of a request to an HTTP/2 cluster is its pooled connection address', async (t) => {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  server.on('stream', (stream) => stream.respond({ ':status': 200, 'x-client': `${stream.session?.socket.remoteAddress}:${stream.session?.socket.remotePort}` }, { endStream: true }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  const h = await startTestRuntime(t);
  const log = path.join(tempDir(t, 'rig-upstream-local-'), 'h2.log');
  const h2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };
  await configure(h, {
    clusters: [staticCluster('h2app', [(server.address() as net.AddressInfo).port], h2)],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'h2app' } }]), { access_log: fileLog(log) })],
  });
  const reply = await request(h.port('l'), { path: '/' });
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers['x-client']), /^127\.0\.0\.1:\d+$/);
  assert.equal(await logged(log), reply.headers['x-client']);
});
