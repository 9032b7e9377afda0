// A cluster's HTTP protocol options on the upstream side: Http2ProtocolOptions.max_concurrent_streams
// (Istio's DestinationRule connectionPool.http.maxConcurrentStreams) caps the streams of one
// upstream HTTP/2 connection, so more concurrent requests open more connections, as in Envoy. Options
// rig cannot apply upstream warn by name when not at Envoy's default; the empty messages a control
// plane sends stay quiet.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime, staticCluster } from './harness.ts';
import { listenLocal } from '../helpers/listen.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { compileCluster } from '../../src/proxy/upstream/cluster-config.ts';

const HTTP_OPTS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const protocolOptions = (o: Record<string, unknown>) => ({ typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTS, ...o } } });

test('max_concurrent_streams: concurrent requests beyond it go over new upstream HTTP/2 connections', async (t) => {
  const CONCURRENT = 3;
  const sessions = { limited: 0, unlimited: 0 };
  const held: http2.Http2ServerResponse[] = [];
  const h2c = (name: keyof typeof sessions) => {
    const s = http2.createServer((_req, res) => {
      // Answer once all requests are in flight together.
      held.push(res);
      if (held.length === CONCURRENT) for (const r of held.splice(0)) r.end(name);
    });
    s.on('session', (session) => {
      sessions[name]++;
      t.after(() => session.destroy());
    });
    return s;
  };
  const limitedPort = await listenLocal(h2c('limited'), t);
  const unlimitedPort = await listenLocal(h2c('unlimited'), t);
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [
      staticCluster('limited', [limitedPort], protocolOptions({ explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 1 } } })),
      staticCluster('unlimited', [unlimitedPort], protocolOptions({ explicit_http_config: { http2_protocol_options: {} } })),
    ],
    listeners: [httpListener('http', routeConfig('r', [{ match: { prefix: '/limited' }, route: { cluster: 'limited' } }, { match: { prefix: '/' }, route: { cluster: 'unlimited' } }]))],
  });
  for (const path of ['/limited', '/unlimited']) {
    const replies = await Promise.all(Array.from({ length: CONCURRENT }, () => request(h.port('http'), { path })));
    assert.deepEqual(
      replies.map((r) => r.status),
      Array(CONCURRENT).fill(200),
    );
  }
  assert.equal(sessions.limited, CONCURRENT, 'one stream per connection: a connection per concurrent request');
  assert.equal(sessions.unlimited, 1, 'without the option the requests share one connection');
});

test('protocol options: control-plane defaults are quiet, unsupported non-default values warn by path, bad values are errors', () => {
  const quiet = new Issues();
  compileCluster(staticCluster('c', [1], protocolOptions({ use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} }, common_http_protocol_options: { idle_timeout: '5s' } })), 'cluster c', quiet);
  compileCluster(staticCluster('c', [1], { http2_protocol_options: { hpack_table_size: 4096, allow_connect: true, max_outbound_frames: 5 }, http_protocol_options: { enable_trailers: false } }), 'cluster c', quiet);
  assert.deepEqual([quiet.errors, quiet.warnings], [[], []]);

  const issues = new Issues();
  const c = compileCluster(
    staticCluster(
      'c',
      [1],
      protocolOptions({
        explicit_http_config: { http2_protocol_options: { max_concurrent_streams: 7, initial_stream_window_size: 1 << 20, hpack_table_size: 0, connection_keepalive: { interval: '10s' } } },
        upstream_http_protocol_options: { auto_sni: true },
      }),
    ),
    'cluster c',
    issues,
  );
  assert.deepEqual(c.h2Options, { maxConcurrentStreams: 7, initialWindowSize: 1 << 20, connectionWindowSize: undefined });
  const opts = 'cluster c.typed_extension_protocol_options.envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
  assert.deepEqual(issues.errors, []);
  assert.deepEqual(issues.warnings.map((w) => w.split(': ')[0]).sort(), [`${opts}.explicit_http_config.http2_protocol_options.connection_keepalive`, `${opts}.explicit_http_config.http2_protocol_options.hpack_table_size`, `${opts}.upstream_http_protocol_options.auto_sni`].sort());

  const h1 = new Issues();
  compileCluster(staticCluster('c', [1], protocolOptions({ explicit_http_config: { http_protocol_options: { header_key_format: { proper_case_words: {} }, allow_chunked_length: true } } })), 'cluster c', h1);
  // header_key_format is applied (test/proxy/h1-header-case): no warning.
  assert.deepEqual(h1.warnings.map((w) => w.split(': ')[0]).sort(), [`${opts}.explicit_http_config.http_protocol_options.allow_chunked_length`]);

  const bad = new Issues();
  compileCluster(staticCluster('c', [1], { http2_protocol_options: { max_concurrent_streams: 0, initial_connection_window_size: 10 } }), 'cluster c', bad);
  assert.deepEqual(bad.errors, ['cluster c.http2_protocol_options.max_concurrent_streams: must be an integer in [1, 2147483647] (got 0)', 'cluster c.http2_protocol_options.initial_connection_window_size: must be an integer in [65535, 2147483647] (got 10)']);
});
