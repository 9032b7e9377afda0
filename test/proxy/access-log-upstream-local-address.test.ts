// %UPSTREAM_LOCAL_ADDRESS% (in Istio's default access log format) is the local address of the
// connection the proxy opened to the upstream: the address the upstream saw the request come from,
// here over HTTP (the HTTP/1 pool) and tcp_proxy. Not yet set for the HTTP/2 pool (undici).
import assert from 'node:assert/strict';
import fs from 'node:fs';
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
