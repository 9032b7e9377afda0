// tcp_proxy's access log in Istio's default text format reads as Envoy writes it for a TCP
// connection: no protocol and no request, so the quoted request is "- - -" and the code 0.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_ACCESS_LOG_TYPE, TCP_PROXY_TYPE } from '../../src/envoy/index.ts';
import { ISTIO_TEXT_FORMAT } from '../../src/xds/telemetry/telemetry-config.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';
import { addr, configure, startTestRuntime, staticCluster } from './harness.ts';

test("tcp_proxy's Istio text log line: \"- - -\" 0, the cluster and the addresses", async (t) => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.after(() => echo.close());
  const h = await startTestRuntime(t, []);
  const log = path.join(tempDir(t, 'rig-tcp-log-'), 'tcp.log');
  const accessLog = [{ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: log, log_format: { text_format_source: { inline_string: ISTIO_TEXT_FORMAT } } } }];
  await configure(h, {
    clusters: [staticCluster('echo', [(echo.address() as net.AddressInfo).port])],
    listeners: [{ name: 'tcp', address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster: 'echo', access_log: accessLog } }] }] }],
  });

  const client = net.connect(h.port('tcp'), '127.0.0.1');
  await new Promise<void>((resolve) => client.once('data', () => resolve()).write('ping'));
  client.end();
  await new Promise((r) => client.once('close', r));
  await until('the access log line', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').endsWith('\n'));
  const line = fs.readFileSync(log, 'utf8').trim();
  assert.match(line, /^\[[^\]]+\] "- - -" 0 - - - "-" 4 4 \d+ - "-" "-" "-" "-" "127\.0\.0\.1:\d+" echo 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ - -$/, line);
});
