// envoy.filters.http.grpc_web in `rig proxy -c`: gRPC-Web clients (hand-encoded frames over HTTP/1.1,
// as a browser's fetch sends them) reach a real @grpc/grpc-js server through an HTTP/2 cluster.
// Binary and text (base64) modes, unary and server streaming, an error status in the trailers frame,
// a trailers-only response, an upstream failure turned into grpc-status, invalid base64, the CORS
// preflight of Envoy's gRPC-Web example config, plain requests passing untouched, and the
// cluster.<name>.grpc-web.<service>.<method>.* stats.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { deadPort, request } from './harness.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ORIGIN = 'http://app.example';

const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
const method = (name: string, responseStream: boolean) => ({ path: `/test.Echo/${name}`, requestStream: false, responseStream, originalName: name, ...raw });
const ECHO: grpc.ServiceDefinition = { Say: method('Say', false), Fail: method('Fail', false), List: method('List', true), ListThenFail: method('ListThenFail', true), Big: method('Big', true) };

/** What the server saw of the last call's metadata. */
let seen: grpc.Metadata | undefined;

const handlers: grpc.UntypedServiceImplementation = {
  Say(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
    seen = call.metadata;
    cb(null, Buffer.concat([Buffer.from('hello '), call.request]));
  },
  Fail(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
    seen = call.metadata;
    cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
  },
  List(call: grpc.ServerWritableStream<Buffer, Buffer>) {
    for (let i = 1; i <= 3; i++) call.write(Buffer.from(`${call.request.toString()} ${i}`));
    call.end();
  },
  Big(call: grpc.ServerWritableStream<Buffer, Buffer>) {
    // Frames larger than the chunks they arrive in, so that text mode re-frames across chunks.
    for (const c of 'abc') call.write(Buffer.alloc(200_000, c));
    call.end();
  },
  ListThenFail(call: grpc.ServerWritableStream<Buffer, Buffer>) {
    call.write(Buffer.from('first'));
    call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: 'stopped: 100% done' });
  },
};

function frame(message: Buffer, flags = 0): Buffer {
  const f = Buffer.alloc(5 + message.length);
  f[0] = flags;
  f.writeUInt32BE(message.length, 1);
  message.copy(f, 5);
  return f;
}

interface Decoded {
  messages: string[];
  trailers: Record<string, string>;
  trailerFrames: number;
}

/** Splits a gRPC-Web response body into messages and the trailers frame. */
function decodeFrames(body: Buffer): Decoded {
  const out: Decoded = { messages: [], trailers: {}, trailerFrames: 0 };
  let at = 0;
  while (at < body.length) {
    const flags = body[at];
    const len = body.readUInt32BE(at + 1);
    const data = body.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    if (flags & 0x80) {
      out.trailerFrames++;
      for (const line of data.toString('latin1').split('\r\n')) {
        if (!line) continue;
        const i = line.indexOf(':');
        out.trailers[line.slice(0, i)] = line.slice(i + 1);
      }
    } else out.messages.push(data.toString());
  }
  return out;
}

/** A grpc-web-text body: base64 segments, each padded on its own; 4-character groups decode independently. */
function decodeText(text: string): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < text.length; i += 4) parts.push(Buffer.from(text.slice(i, i + 4), 'base64'));
  return Buffer.concat(parts);
}

interface WebReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A gRPC-Web call over HTTP/1.1; the body is written in the given pieces (each its own chunk). */
function call(port: number, pathName: string, pieces: Buffer[], headers: http.OutgoingHttpHeaders): Promise<WebReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      for (const p of pieces) {
        req.write(p);
        await new Promise((r) => setTimeout(r, 10));
      }
      req.end();
    })();
  });
}

const binaryCall = (port: number, m: string, message: string, extra: http.OutgoingHttpHeaders = {}) =>
  call(port, `/test.Echo/${m}`, [frame(Buffer.from(message))], { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1', 'x-user-agent': 'grpc-web-javascript/0.1', ...extra });

function bootstrap(grpcPort: number, dead: number) {
  const cluster = (name: string, port: number) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
  });
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: 'web',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM,
                    stat_prefix: 'ingress_http',
                    http_filters: [
                      { name: 'envoy.filters.http.grpc_web', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb' } },
                      { name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                    route_config: {
                      name: 'local_route',
                      virtual_hosts: [
                        {
                          name: 'local_service',
                          domains: ['*'],
                          typed_per_filter_config: {
                            'envoy.filters.http.cors': {
                              '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
                              allow_origin_string_match: [{ exact: ORIGIN }],
                              allow_methods: 'GET, PUT, DELETE, POST, OPTIONS',
                              allow_headers: 'keep-alive,user-agent,cache-control,content-type,content-transfer-encoding,custom-header-1,x-accept-content-transfer-encoding,x-accept-response-streaming,x-user-agent,x-grpc-web,grpc-timeout',
                              max_age: '1728000',
                              expose_headers: 'custom-header-1,grpc-status,grpc-message',
                            },
                          },
                          routes: [
                            { match: { prefix: '/dead.' }, route: { cluster: 'dead', timeout: '0s' } },
                            { match: { prefix: '/' }, route: { cluster: 'echo', timeout: '0s' } },
                          ],
                        },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [cluster('echo', grpcPort), cluster('dead', dead)],
    },
  };
}

test('grpc_web: gRPC-Web clients call a gRPC server through rig proxy (binary and text, unary and streaming, errors, CORS, stats)', async (t) => {
  const grpcPort = await startGrpcServer(t, ECHO, handlers);
  const dir = tempDir(t, 'grpc-web-');
  const file = path.join(dir, 'envoy.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap(grpcPort, await deadPort())));
  const { ports } = await startRigProxyFromFile(t, file);
  const port = ports.listeners.web;

  // Binary unary: the message, then a trailers frame with grpc-status 0; x-grpc-web and x-user-agent reach the server.
  let r = await binaryCall(port, 'Say', 'web');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(r.headers['grpc-status'], undefined, 'the status is in the trailers frame');
  let d = decodeFrames(r.body);
  assert.deepEqual(d.messages, ['hello web']);
  assert.equal(d.trailers['grpc-status'], '0');
  assert.equal(d.trailerFrames, 1);
  assert.equal(seen?.get('x-grpc-web')[0], '1');
  assert.equal(seen?.get('x-user-agent')[0], 'grpc-web-javascript/0.1');

  // The same over HTTP/2 (a browser on an h2 connection): the trailers frame in the body, no HTTP/2 trailers.
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.close());
  const h2Call = (headers: http2.OutgoingHttpHeaders, body: Buffer) =>
    new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders | undefined; body: Buffer }>((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': '/test.Echo/Say', ...headers });
      const chunks: Buffer[] = [];
      let head: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      s.on('response', (h) => (head = h));
      s.on('trailers', (h) => (trailers = h));
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => resolve({ headers: head, trailers, body: Buffer.concat(chunks) }));
      s.on('error', reject);
      s.end(body);
    });
  let h2 = await h2Call({ 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' }, frame(Buffer.from('h2')));
  assert.equal(h2.headers[':status'], 200);
  assert.equal(h2.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(h2.trailers, undefined);
  d = decodeFrames(h2.body);
  assert.deepEqual(d.messages, ['hello h2']);
  assert.equal(d.trailers['grpc-status'], '0');
  h2 = await h2Call({ 'content-type': 'application/grpc-web-text', accept: 'application/grpc-web-text' }, Buffer.from(frame(Buffer.from('h2 text')).toString('base64')));
  assert.equal(h2.headers['content-type'], 'application/grpc-web-text+proto');
  d = decodeFrames(decodeText(h2.body.toString('latin1')));
  assert.deepEqual(d.messages, ['hello h2 text']);
  assert.equal(d.trailers['grpc-status'], '0');

  // Server streaming: three messages, then the trailers frame.
  r = await binaryCall(port, 'List', 'item');
  d = decodeFrames(r.body);
  assert.deepEqual(d.messages, ['item 1', 'item 2', 'item 3']);
  assert.equal(d.trailers['grpc-status'], '0');

  // An error after a message: grpc-status and grpc-message (percent-encoded by the server) in the trailers frame.
  r = await binaryCall(port, 'ListThenFail', 'x');
  d = decodeFrames(r.body);
  assert.deepEqual(d.messages, ['first']);
  assert.equal(d.trailers['grpc-status'], String(grpc.status.FAILED_PRECONDITION));
  assert.equal(decodeURIComponent(d.trailers['grpc-message']), 'stopped: 100% done');

  // Trailers-only (an error before any message): grpc-status in the response head, an empty body.
  r = await binaryCall(port, 'Fail', 'x');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(r.headers['grpc-status'], String(grpc.status.NOT_FOUND));
  assert.equal(decodeURIComponent(String(r.headers['grpc-message'])), 'no such thing');
  assert.equal(r.body.length, 0);

  // Text mode: a base64 request cut inside 4-character groups, a base64 response (frames and trailers).
  const text = Buffer.from(frame(Buffer.from('text client')).toString('base64'));
  const pieces = [text.subarray(0, 3), text.subarray(3, 9), text.subarray(9, 10), text.subarray(10)];
  const textHeaders = { 'content-type': 'application/grpc-web-text', accept: 'application/grpc-web-text', 'x-grpc-web': '1' };
  r = await call(port, '/test.Echo/Say', pieces, textHeaders);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/grpc-web-text+proto');
  assert.match(r.body.toString('latin1'), /^[A-Za-z0-9+/=]+$/);
  d = decodeFrames(decodeText(r.body.toString('latin1')));
  assert.deepEqual(d.messages, ['hello text client']);
  assert.equal(d.trailers['grpc-status'], '0');
  r = await call(port, '/test.Echo/List', [Buffer.from(frame(Buffer.from('t')).toString('base64'))], textHeaders);
  d = decodeFrames(decodeText(r.body.toString('latin1')));
  assert.deepEqual(d.messages, ['t 1', 't 2', 't 3']);
  assert.equal(d.trailers['grpc-status'], '0');

  r = await call(port, '/test.Echo/Big', [Buffer.from(frame(Buffer.from('b')).toString('base64'))], textHeaders);
  d = decodeFrames(decodeText(r.body.toString('latin1')));
  assert.deepEqual(d.messages.map((m) => [m.length, m[0], m.at(-1)]), [[200_000, 'a', 'a'], [200_000, 'b', 'b'], [200_000, 'c', 'c']]);
  assert.equal(d.trailers['grpc-status'], '0');

  // Invalid base64 (a character outside the alphabet; a body short of a whole group): 400, as grpc-status 13.
  for (const bad of ['AAAA!AAA', 'AAAAAAA']) {
    r = await call(port, '/test.Echo/Say', [Buffer.from(bad)], textHeaders);
    assert.equal(r.status, 400, bad);
    assert.equal(r.headers['grpc-status'], '13');
    assert.equal(r.headers['grpc-message'], 'Bad gRPC-web request, invalid base64 data.');
    assert.equal(r.headers['content-type'], 'application/grpc-web-text+proto');
    assert.equal(r.body.length, 0);
  }

  // The upstream fails (nothing listens): Envoy's 503 keeps its status, with grpc-status 14 and the reason as grpc-message.
  r = await call(port, '/dead.Svc/Call', [frame(Buffer.from('x'))], { 'content-type': 'application/grpc-web' });
  assert.equal(r.status, 503);
  assert.equal(r.headers['grpc-status'], '14');
  assert.match(decodeURIComponent(String(r.headers['grpc-message'])), /^upstream connect error or disconnect\/reset before headers/);
  assert.equal(r.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(r.body.length, 0);

  // CORS preflight from the browser's origin, answered by the cors filter; the actual call gets the allow and expose headers.
  const pre = await request(port, { path: '/test.Echo/Say', method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-grpc-web,x-user-agent' } });
  assert.equal(pre.status, 200);
  assert.equal(pre.headers['access-control-allow-origin'], ORIGIN);
  assert.match(String(pre.headers['access-control-allow-headers']), /x-grpc-web/);
  assert.equal(pre.headers['access-control-max-age'], '1728000');
  r = await binaryCall(port, 'Say', 'cors', { origin: ORIGIN });
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
  assert.equal(r.headers['access-control-expose-headers'], 'custom-header-1,grpc-status,grpc-message');
  assert.deepEqual(decodeFrames(r.body).messages, ['hello cors']);

  // Not gRPC-Web: passes untouched (grpc-js refuses the content type itself).
  const plain = await request(port, { path: '/test.Echo/Say', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(plain.status, 415);
  assert.notEqual(plain.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(plain.headers['grpc-status'], undefined);

  // Envoy's gRPC-Web stats on the cluster, per service and method.
  const stats = (await request(ports.admin, { path: '/stats' })).body;
  const stat = (name: string) => Number(new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(stats)?.[1]);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.Say.0'), 5);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.Say.success'), 5);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.Say.total'), 5);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.List.success'), 2);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.ListThenFail.9'), 1);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.ListThenFail.failure'), 1);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.Fail.5'), 1);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.Fail.failure'), 1);
  assert.equal(stat('cluster.echo.grpc-web.test.Echo.Fail.total'), 1);
});
