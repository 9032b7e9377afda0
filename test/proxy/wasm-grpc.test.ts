// envoy.filters.http.wasm gRPC callouts over real sockets, to an HTTP/2 gRPC server through one of
// the proxy's clusters: a unary proxy_grpc_call to a serialized GrpcService (its authority and
// initial metadata on the call) answered with a message, or closed with a status and message
// (proxy_get_status); a proxy_grpc_stream with two messages and a half-close (proxy_grpc_close) whose
// initial metadata, echoed messages, trailing metadata and close reach the plugin's callbacks; a
// cancelled stream (proxy_grpc_cancel, then NotFound) leaves nothing open; an unknown upstream is
// answered ParseFailure.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type net from 'node:net';
import { test } from 'node:test';
import { encodeMessage } from '../../src/envoy/index.ts';
import { listenLocal } from '../helpers/listen.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { grpcPlugin, writePlugin } from '../helpers/wasm-plugins.ts';
import { configure, httpListener, request, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const OPTS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const H2 = { typed_extension_protocol_options: { [OPTS]: { '@type': `type.googleapis.com/${OPTS}`, explicit_http_config: { http2_protocol_options: {} } } } };

function frame(s: string): Buffer {
  const b = Buffer.from(s);
  const out = Buffer.alloc(5 + b.length);
  out.writeUInt32BE(b.length, 1);
  b.copy(out, 5);
  return out;
}

function messages(buf: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off + 5 <= buf.length; off += 5 + buf.readUInt32BE(off + 1)) out.push(buf.subarray(off + 5, off + 5 + buf.readUInt32BE(off + 1)).toString());
  return out;
}

interface Call {
  path: string;
  headers: http2.IncomingHttpHeaders;
  messages: string[];
}

test('wasm: gRPC callouts (unary call, stream, cancel) through a cluster reach the plugin callbacks', async (t) => {
  const calls: Call[] = [];
  let failUnary = false;
  let open = 0;
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const call: Call = { path: String(headers[':path']), headers, messages: [] };
    calls.push(call);
    open++;
    let buf = Buffer.alloc(0);
    stream.on('close', () => open--);
    if (call.path === '/test.Echo/Stream') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-server-meta': 'sm' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '5', 'grpc-message': 'stream%20done', 'x-trailer': 'tv' }));
    }
    stream.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const got = messages(buf);
      for (const m of got.slice(call.messages.length)) if (call.path === '/test.Echo/Stream') stream.write(frame(`${m}-echo`));
      call.messages = got;
    });
    stream.on('end', () => {
      if (call.path === '/test.Echo/Stream') return stream.end();
      if (failUnary) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '7', 'grpc-message': 'no way' }, { endStream: true });
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame(`pong:${call.messages[0]}:${String(headers['x-meta'])}`));
    });
  });
  const grpcPort = await listenLocal(server as unknown as net.Server, t);
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const dir = tempDir(t, 'wasm-');
  const service = encodeMessage('envoy.config.core.v3.GrpcService', { envoy_grpc: { cluster_name: 'grpc', authority: 'svc.example' }, initial_metadata: [{ key: 'x-from-service', value: 'yes' }] });
  const file = await writePlugin(dir, 'grpc', grpcPlugin(Buffer.from(service)));
  const filter = { name: 'envoy.filters.http.wasm', typed_config: { '@type': WASM, config: { name: 'g', root_id: 'g', vm_config: { vm_id: 'g', code: { local: { filename: file } } } } } };
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('grpc', [grpcPort], H2)],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { http_filters: [filter, ROUTER] })],
  });
  const port = h.port('l');

  const unary = (await request(port, { headers: { 'x-unary': '1' } })).json().headers;
  assert.equal(unary['x-msg'], 'pong:ping:m1', 'the answer, in proxy_on_grpc_receive');
  assert.equal(unary['x-close-status'], undefined, 'an answered call is not closed');
  const u = calls.at(-1)!;
  assert.equal(u.path, '/test.Echo/Unary');
  assert.equal(u.headers[':authority'], 'svc.example', "the GrpcService's authority");
  assert.equal(u.headers['x-from-service'], 'yes', "the GrpcService's initial metadata");
  assert.equal(u.headers['content-type'], 'application/grpc');
  assert.match(String(u.headers['grpc-timeout']), /^5000m$/);

  failUnary = true;
  const failed = (await request(port, { headers: { 'x-unary': '1' } })).json().headers;
  assert.equal(failed['x-close-status'], '7', 'proxy_on_grpc_close with the status');
  assert.equal(failed['x-close-message'], 'no way', 'proxy_get_status');
  assert.equal(failed['x-msg'], undefined);

  const stream = (await request(port, { headers: { 'x-stream': '1' } })).json().headers;
  assert.equal(stream['x-initial'], 'sm', 'initial metadata');
  assert.equal(stream['x-msg'], 'one-echo, two-echo', 'each message');
  assert.equal(stream['x-trailing'], 'tv', 'trailing metadata');
  assert.equal(stream['x-close-status'], '5');
  assert.equal(stream['x-close-message'], 'stream done');
  const s = calls.at(-1)!;
  assert.equal(s.path, '/test.Echo/Stream');
  assert.equal(s.headers[':authority'], 'grpc', 'a cluster name: the authority is the cluster');
  assert.deepEqual(s.messages, ['one', 'two']);

  const cancel = (await request(port, { headers: { 'x-cancel': '1' } })).json().headers;
  assert.equal(cancel['x-cancel-again'], 'yes', 'a cancelled stream is gone: NotFound');
  await waitFor('no gRPC stream left open (the cancelled one reset)', async () => (open === 0 ? true : undefined));

  const bad = (await request(port, { headers: { 'x-bad': '1' } })).json().headers;
  assert.equal(bad['x-bad-status'], 'yes', 'an unknown upstream: ParseFailure');
});
